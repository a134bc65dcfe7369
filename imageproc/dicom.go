package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"math"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// DICOMInfo is what DICOM decoding read from the file and what it did.
type DICOMInfo struct {
	Modality       string // CT, CR, DX, MR, SM, ...
	Photometric    string // MONOCHROME1, MONOCHROME2, RGB, YBR_FULL_422, ...
	TransferSyntax string
	Rows, Columns  int
	Frames, Frame  int // number of frames; the one decoded
	BitsAllocated  int
	BitsStored     int
	Samples        int  // samples per pixel: 1 (gray) or 3 (colour)
	Signed         bool // PixelRepresentation 1
	// Rescale slope and intercept (modality LUT), when the file has them.
	Slope, Intercept float64
	HasRescale       bool
	// The file's first WindowCenter / WindowWidth, when present.
	FileWindow *Window
	// Min and Max are the frame's modality values (Hounsfield units for CT).
	Min, Max float64
	// Rendering says how the values became RGB, e.g. "CT windows 0,2048 |
	// 175,80 | 40,80" or "stretched over the full range".
	Rendering string
}

// Transfer syntaxes medgemma decodes.
const (
	tsImplicitLE   = "1.2.840.10008.1.2"
	tsExplicitLE   = "1.2.840.10008.1.2.1"
	tsExplicitBE   = "1.2.840.10008.1.2.2"
	tsJPEGBaseline = "1.2.840.10008.1.2.4.50"
	tsJPEGLossless = "1.2.840.10008.1.2.4.57"
	tsJPEGSV1      = "1.2.840.10008.1.2.4.70"
	tsRLE          = "1.2.840.10008.1.2.5"
	tsJPEGExtended = "1.2.840.10008.1.2.4.51"
)

var transferSyntaxNames = map[string]string{
	"1.2.840.10008.1.2.1.99":  "Deflated Explicit VR Little Endian",
	"1.2.840.10008.1.2.4.80":  "JPEG-LS Lossless",
	"1.2.840.10008.1.2.4.81":  "JPEG-LS Near-lossless",
	"1.2.840.10008.1.2.4.90":  "JPEG 2000 Lossless",
	"1.2.840.10008.1.2.4.91":  "JPEG 2000",
	"1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
	"1.2.840.10008.1.2.4.203": "HTJ2K",
}

// parseDICOM runs the DICOM library, turning its panics into errors.
func parseDICOM(data []byte, opts ...dicom.ParseOption) (ds dicom.Dataset, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed DICOM: %v", r)
		}
	}()
	return dicom.Parse(bytes.NewReader(data), int64(len(data)), nil, opts...)
}

// decodeDICOM decodes one frame of a DICOM file with modality-aware defaults.
func decodeDICOM(data []byte, opts Options) (*RGB, *Info, error) {
	// Once, before either parse below (see dicomLengthsFit).
	if err := dicomLengthsFit(data); err != nil {
		return nil, nil, fmt.Errorf("DICOM: %w", err)
	}
	header, err := parseDICOM(data, dicom.SkipPixelData())
	if err != nil {
		return nil, nil, fmt.Errorf("DICOM: %w", err)
	}
	di, err := readDICOMInfo(&header)
	if err != nil {
		return nil, nil, fmt.Errorf("DICOM: %w", err)
	}
	if err := checkSize(di.Columns, di.Rows, opts.MaxPixels); err != nil {
		return nil, nil, fmt.Errorf("DICOM: %w", err)
	}
	if opts.Frame < 0 || opts.Frame >= di.Frames {
		return nil, nil, withKind(ErrOptions, fmt.Errorf("DICOM: frame %d requested, the file has %d frame(s)", opts.Frame, di.Frames))
	}
	di.Frame = opts.Frame
	ds, err := parseDICOM(data)
	if err != nil {
		return nil, nil, fmt.Errorf("DICOM: %w", err)
	}
	el, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		return nil, nil, errors.New("DICOM: no PixelData element")
	}
	pd, ok := el.Value.GetValue().(dicom.PixelDataInfo)
	if !ok {
		return nil, nil, errors.New("DICOM: PixelData could not be read")
	}
	if pd.ParseErr != nil {
		return nil, nil, fmt.Errorf("DICOM: PixelData: %w", pd.ParseErr)
	}
	if opts.Frame >= len(pd.Frames) {
		return nil, nil, fmt.Errorf("DICOM: frame %d requested, PixelData holds %d frame(s)", opts.Frame, len(pd.Frames))
	}
	fr := pd.Frames[opts.Frame]

	var img *RGB
	var gray []float64
	var raw any // samples of a frame decoded to the uncompressed layout
	if fr.Encapsulated && di.TransferSyntax == tsJPEGExtended {
		w, h, pix, err := decodeJPEG12(fr.EncapsulatedData.Data, int64(di.Rows)*int64(di.Columns))
		switch {
		case err == nil && (w != di.Columns || h != di.Rows || di.Samples != 1):
			return nil, nil, fmt.Errorf("DICOM: frame %d: 12-bit JPEG of %dx%d, the header says %dx%d with %d samples", opts.Frame, w, h, di.Columns, di.Rows, di.Samples)
		case err == nil:
			raw = pix
		case !errors.Is(err, errJPEGOther): // 8-bit extended JPEG: decoded below as baseline
			return nil, nil, fmt.Errorf("DICOM: frame %d: JPEG: %w", opts.Frame, err)
		}
	} else if fr.Encapsulated && di.TransferSyntax != tsJPEGBaseline {
		raw, err = decodeLosslessFrame(fr.EncapsulatedData.Data, di)
		if err != nil {
			return nil, nil, fmt.Errorf("DICOM: frame %d: %w", opts.Frame, err)
		}
	}
	if raw != nil {
		samples, err := nativeSamples(raw, di)
		if err != nil {
			return nil, nil, fmt.Errorf("DICOM: frame %d: %w", opts.Frame, err)
		}
		if di.Samples == 3 {
			if img, err = nativeRGB(samples, di, &header); err != nil {
				return nil, nil, fmt.Errorf("DICOM: %w", err)
			}
		} else {
			gray = samples
		}
	} else if fr.Encapsulated {
		m, err := decodeJPEGAny(fr.EncapsulatedData.Data, int64(di.Rows)*int64(di.Columns))
		if err != nil {
			return nil, nil, fmt.Errorf("DICOM: frame %d: JPEG: %w", opts.Frame, err)
		}
		if b := m.Bounds(); b.Dx() != di.Columns || b.Dy() != di.Rows {
			return nil, nil, fmt.Errorf("DICOM: frame %d is %dx%d, the header says %dx%d", opts.Frame, b.Dx(), b.Dy(), di.Columns, di.Rows)
		}
		if g, ok := m.(*image.Gray); ok && di.Samples == 1 {
			gray = make([]float64, di.Rows*di.Columns)
			for y := range di.Rows {
				for x := range di.Columns {
					gray[y*di.Columns+x] = float64(g.Pix[y*g.Stride+x])
				}
			}
		} else if img, err = ToRGB(m); err != nil {
			return nil, nil, fmt.Errorf("DICOM: frame %d: %w", opts.Frame, err)
		}
	} else {
		nf, err := fr.GetNativeFrame()
		if err != nil {
			return nil, nil, fmt.Errorf("DICOM: frame %d: %w", opts.Frame, err)
		}
		samples, err := nativeSamples(nf.RawDataSlice(), di)
		if err != nil {
			return nil, nil, fmt.Errorf("DICOM: frame %d: %w", opts.Frame, err)
		}
		if di.Samples == 3 {
			img, err = nativeRGB(samples, di, &header)
			if err != nil {
				return nil, nil, fmt.Errorf("DICOM: %w", err)
			}
		} else {
			gray = samples
		}
	}
	if img == nil {
		if img, err = renderGray(gray, di, opts.Window); err != nil {
			return nil, nil, fmt.Errorf("DICOM: %w", err)
		}
	} else {
		if opts.Window != nil {
			return nil, nil, withKind(ErrOptions, fmt.Errorf("DICOM: a window applies to grayscale images; this one is %s", di.Photometric))
		}
		di.Rendering = "colour as stored"
	}
	return img, &Info{Format: "dicom", Width: di.Columns, Height: di.Rows, Mode: dicomMode(di), DICOM: di}, nil
}

// decodeLosslessFrame decodes a JPEG lossless or RLE frame into the layout
// of uncompressed PixelData.
func decodeLosslessFrame(data []byte, di *DICOMInfo) (any, error) {
	if di.TransferSyntax == tsRLE {
		return decodeRLE(data, di)
	}
	img, err := decodeJPEGLossless(data, int64(di.Rows)*int64(di.Columns))
	if err != nil {
		return nil, fmt.Errorf("JPEG lossless: %w", err)
	}
	if img.w != di.Columns || img.h != di.Rows || img.comps != di.Samples {
		return nil, fmt.Errorf("JPEG lossless frame is %dx%d with %d components, the header says %dx%d with %d", img.w, img.h, img.comps, di.Columns, di.Rows, di.Samples)
	}
	if img.precision > di.BitsAllocated {
		return nil, fmt.Errorf("JPEG lossless samples of %d bits exceed BitsAllocated %d", img.precision, di.BitsAllocated)
	}
	if di.BitsAllocated == 8 {
		out := make([]uint8, len(img.pix))
		for i, v := range img.pix {
			out[i] = uint8(v)
		}
		return out, nil
	}
	return img.pix, nil
}

func dicomMode(di *DICOMInfo) string {
	switch {
	case di.Samples == 3:
		return "RGB"
	case di.BitsAllocated > 8:
		return "I;16"
	}
	return "L"
}

// readDICOMInfo reads and checks the attributes that describe the pixels.
func readDICOMInfo(ds *dicom.Dataset) (*DICOMInfo, error) {
	di := &DICOMInfo{Frames: 1, Slope: 1}
	var err error
	str := func(t tag.Tag) string {
		if s := elementStrings(ds, t); len(s) > 0 {
			return strings.TrimSpace(s[0])
		}
		return ""
	}
	di.TransferSyntax = str(tag.TransferSyntaxUID)
	di.Modality = strings.ToUpper(str(tag.Modality))
	di.Photometric = strings.ToUpper(str(tag.PhotometricInterpretation))
	for _, f := range []struct {
		t    tag.Tag
		name string
		dst  *int
	}{{tag.Rows, "Rows", &di.Rows}, {tag.Columns, "Columns", &di.Columns}, {tag.BitsAllocated, "BitsAllocated", &di.BitsAllocated},
		{tag.SamplesPerPixel, "SamplesPerPixel", &di.Samples}} {
		v, ok := elementInt(ds, f.t)
		if !ok {
			return nil, fmt.Errorf("missing or invalid %s", f.name)
		}
		*f.dst = v
	}
	if v, ok := elementInt(ds, tag.BitsStored); ok {
		di.BitsStored = v
	} else {
		di.BitsStored = di.BitsAllocated
	}
	if v, ok := elementInt(ds, tag.PixelRepresentation); ok {
		di.Signed = v == 1
	}
	if s := str(tag.NumberOfFrames); s != "" {
		if di.Frames, err = strconv.Atoi(s); err != nil || di.Frames < 1 {
			return nil, fmt.Errorf("invalid NumberOfFrames %q", s)
		}
	}
	slope, okS := elementFloat(ds, tag.RescaleSlope)
	intercept, okI := elementFloat(ds, tag.RescaleIntercept)
	if okS && okI {
		di.Slope, di.Intercept, di.HasRescale = slope, intercept, true
	}
	c, okC := elementFloat(ds, tag.WindowCenter)
	w, okW := elementFloat(ds, tag.WindowWidth)
	if okC && okW && w >= 1 {
		di.FileWindow = &Window{Center: c, Width: w}
	}

	switch di.TransferSyntax {
	case tsImplicitLE, tsExplicitLE, tsExplicitBE, tsJPEGBaseline, tsJPEGExtended, tsJPEGLossless, tsJPEGSV1, tsRLE:
	case "":
		return nil, errors.New("missing TransferSyntaxUID")
	default:
		name := transferSyntaxNames[di.TransferSyntax]
		if name == "" {
			name = "unknown"
		}
		return nil, withKind(ErrUnsupported, fmt.Errorf("transfer syntax %s (%s) is not supported (uncompressed, JPEG baseline and extended, JPEG lossless and RLE are)", di.TransferSyntax, name))
	}
	switch {
	case di.Samples != 1 && di.Samples != 3:
		return nil, withKind(ErrUnsupported, fmt.Errorf("SamplesPerPixel %d is not supported (1 or 3)", di.Samples))
	case di.BitsAllocated != 8 && di.BitsAllocated != 16 && di.BitsAllocated != 32:
		return nil, withKind(ErrUnsupported, fmt.Errorf("BitsAllocated %d is not supported (8, 16 or 32)", di.BitsAllocated))
	case di.BitsStored < 1 || di.BitsStored > di.BitsAllocated:
		return nil, fmt.Errorf("BitsStored %d does not fit BitsAllocated %d", di.BitsStored, di.BitsAllocated)
	case di.Samples == 3 && di.BitsAllocated != 8:
		return nil, withKind(ErrUnsupported, fmt.Errorf("colour with BitsAllocated %d is not supported (8)", di.BitsAllocated))
	}
	switch di.Photometric {
	case "MONOCHROME1", "MONOCHROME2":
		if di.Samples != 1 {
			return nil, fmt.Errorf("%s with SamplesPerPixel %d", di.Photometric, di.Samples)
		}
	case "RGB":
	case "YBR_FULL", "YBR_FULL_422":
		if di.TransferSyntax != tsJPEGBaseline {
			return nil, withKind(ErrUnsupported, fmt.Errorf("uncompressed %s is not supported", di.Photometric))
		}
	case "":
		return nil, errors.New("missing PhotometricInterpretation")
	default:
		return nil, withKind(ErrUnsupported, fmt.Errorf("PhotometricInterpretation %s is not supported", di.Photometric))
	}
	return di, nil
}

func element(ds *dicom.Dataset, t tag.Tag) any {
	e, err := ds.FindElementByTag(t)
	if err != nil || e.Value == nil {
		return nil
	}
	return e.Value.GetValue()
}

func elementStrings(ds *dicom.Dataset, t tag.Tag) []string {
	s, _ := element(ds, t).([]string)
	return s
}

func elementInt(ds *dicom.Dataset, t tag.Tag) (int, bool) {
	switch v := element(ds, t).(type) {
	case []int:
		if len(v) > 0 {
			return v[0], true
		}
	case []string:
		if len(v) > 0 {
			n, err := strconv.Atoi(strings.TrimSpace(v[0]))
			return n, err == nil
		}
	}
	return 0, false
}

// elementFloat reads the first value of a decimal string (DS) attribute.
func elementFloat(ds *dicom.Dataset, t tag.Tag) (float64, bool) {
	switch v := element(ds, t).(type) {
	case []string:
		if len(v) > 0 {
			first, _, _ := strings.Cut(v[0], "\\")
			f, err := strconv.ParseFloat(strings.TrimSpace(first), 64)
			return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
		}
	case []float64:
		if len(v) > 0 {
			return v[0], true
		}
	}
	return 0, false
}

// nativeSamples reads the stored values of an uncompressed frame: masked to
// BitsStored, sign-extended when PixelRepresentation is 1.
func nativeSamples(raw any, di *DICOMInfo) ([]float64, error) {
	n := di.Rows * di.Columns * di.Samples
	var get func(i int) uint32
	var have int
	switch r := raw.(type) {
	case []uint8:
		get, have = func(i int) uint32 { return uint32(r[i]) }, len(r)
	case []uint16:
		get, have = func(i int) uint32 { return uint32(r[i]) }, len(r)
	case []uint32:
		get, have = func(i int) uint32 { return r[i] }, len(r)
	default:
		return nil, fmt.Errorf("unsupported native pixel data (%T)", raw)
	}
	if have < n {
		return nil, fmt.Errorf("PixelData holds %d samples, %dx%dx%d needs %d", have, di.Columns, di.Rows, di.Samples, n)
	}
	bits := uint(di.BitsStored)
	mask := uint32(1)<<bits - 1
	if bits == 32 {
		mask = math.MaxUint32
	}
	out := make([]float64, n)
	for i := range out {
		v := get(i) & mask
		if di.Signed && v&(1<<(bits-1)) != 0 {
			out[i] = float64(int64(v) - int64(1)<<bits)
		} else {
			out[i] = float64(v)
		}
	}
	return out, nil
}

// nativeRGB assembles an uncompressed 8-bit colour frame, interleaved or
// planar (PlanarConfiguration 1).
func nativeRGB(s []float64, di *DICOMInfo, ds *dicom.Dataset) (*RGB, error) {
	if di.Photometric != "RGB" {
		return nil, withKind(ErrUnsupported, fmt.Errorf("uncompressed %s colour is not supported", di.Photometric))
	}
	planar, _ := elementInt(ds, tag.PlanarConfiguration)
	img := NewRGB(di.Columns, di.Rows)
	n := di.Rows * di.Columns
	for i := range n {
		for c := range 3 {
			v := s[i*3+c]
			if planar == 1 {
				v = s[c*n+i]
			}
			img.Pix[i*3+c] = uint8(v)
		}
	}
	return img, nil
}

// renderGray turns a grayscale frame into RGB the way Google prepares DICOM
// for MedGemma, or through the user's window.
//
//   - CT: stored values to Hounsfield units (slope and intercept, rounded),
//     then three windows packed as RGB (0,2048 | 175,80 | 40,80).
//   - CR, DX: the modality LUT, then the file's window when it has one, else
//     values above 8 bits stretched over the full range; MONOCHROME1 inverted.
//   - Others: the same without the file's window.
func renderGray(v []float64, di *DICOMInfo, user *Window) (*RGB, error) {
	ct := di.Modality == "CT"
	if di.HasRescale {
		for i, x := range v {
			y := x*di.Slope + di.Intercept
			if ct {
				y = math.RoundToEven(y)
			} else {
				y = math.Trunc(y) // pydicom's LUT output cast back to the stored integer type
			}
			v[i] = y
		}
	}
	di.Min, di.Max = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		di.Min, di.Max = min(di.Min, x), max(di.Max, x)
	}
	img := NewRGB(di.Columns, di.Rows)
	p := img.Pix
	window := user
	if window == nil && (di.Modality == "CR" || di.Modality == "DX") {
		window = di.FileWindow
	}
	switch {
	case window != nil:
		l := window.prepare()
		for i, x := range v {
			g := l.apply(x)
			p[3*i], p[3*i+1], p[3*i+2] = g, g, g
		}
		di.Rendering = "window " + window.String()
		if user == nil {
			di.Rendering = "the file's window " + window.String()
		}
	case ct:
		var l [3]windowLUT
		for c, w := range ctWindows {
			l[c] = w.prepare()
		}
		for i, x := range v {
			p[3*i], p[3*i+1], p[3*i+2] = l[0].apply(x), l[1].apply(x), l[2].apply(x)
		}
		di.Rendering = "CT windows 0,2048 | 175,80 | 40,80 as RGB"
		return img, nil // Google does not invert CT
	case di.BitsAllocated == 8:
		for i, x := range v {
			g := clampByte(int(x))
			p[3*i], p[3*i+1], p[3*i+2] = g, g, g
		}
		di.Rendering = "8-bit values as stored"
	default:
		// Stretch min..max over 0..65535 (truncating, as numpy's astype), then
		// to 8 bits by round(v/257).
		slope := 0.0
		if di.Max > di.Min {
			slope = 65535 / (di.Max - di.Min)
		}
		for i, x := range v {
			w := uint16(slope * (x - di.Min))
			if x >= di.Max && slope > 0 {
				w = 65535
			}
			g := gray16To8(w)
			p[3*i], p[3*i+1], p[3*i+2] = g, g, g
		}
		di.Rendering = "stretched over the full range"
	}
	if di.Photometric == "MONOCHROME1" {
		for i := range p {
			p[i] = 255 - p[i]
		}
		di.Rendering += ", inverted (MONOCHROME1)"
	}
	return img, nil
}
