package dicom

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"math"
	"strconv"
	"strings"

	"github.com/medgemma/medgemma/imageproc/internal/imgerr"
	"github.com/medgemma/medgemma/imageproc/jpeg"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Info describes the pixels of a DICOM file: the attributes that say how
// its frames are stored and what their values mean.
type Info struct {
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
	// The file's first WindowCenter / WindowWidth, when present (width >= 1).
	WindowCenter, WindowWidth float64
	HasWindow                 bool
}

// Frame is one decoded frame. Exactly one of Stored, RGB and Image holds
// its pixels.
type Frame struct {
	Info
	// Stored holds a grayscale frame's stored values, row by row: masked to
	// BitsStored and sign-extended when PixelRepresentation is 1, before
	// the modality LUT.
	Stored []float64
	// RGB holds an uncompressed or lossless colour frame, 8 bits per
	// sample, interleaved (planar files are interleaved here).
	RGB []uint8
	// Image holds a colour frame compressed as baseline JPEG, as
	// imageproc/jpeg decoded it.
	Image image.Image
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

// parse runs the DICOM library, turning its panics into errors.
func parse(data []byte, opts ...dicom.ParseOption) (ds dicom.Dataset, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed DICOM: %v", r)
		}
	}()
	return dicom.Parse(bytes.NewReader(data), int64(len(data)), nil, opts...)
}

// Decode reads frame `frame` (from 0) of a DICOM file, refusing from the
// header an image of more than maxPixels pixels, a frame past the last
// (imageproc.ErrOptions) and what it does not decode
// (imageproc.ErrUnsupported: JPEG 2000, JPEG-LS, ...). Uncompressed, JPEG
// baseline, JPEG Extended (12-bit), JPEG Lossless and RLE frames are
// decoded. Errors start with "DICOM:".
func Decode(data []byte, frame int, maxPixels int64) (*Frame, error) {
	f, err := decode(data, frame, maxPixels)
	if err != nil {
		return nil, fmt.Errorf("DICOM: %w", err)
	}
	return f, nil
}

func decode(data []byte, frame int, maxPixels int64) (*Frame, error) {
	// Once, before either parse below (see lengthsFit).
	if err := lengthsFit(data); err != nil {
		return nil, err
	}
	header, err := parse(data, dicom.SkipPixelData())
	if err != nil {
		return nil, err
	}
	di, err := readInfo(&header)
	if err != nil {
		return nil, err
	}
	if err := imgerr.CheckSize(di.Columns, di.Rows, maxPixels); err != nil {
		return nil, err
	}
	if frame < 0 || frame >= di.Frames {
		return nil, imgerr.With(imgerr.ErrOptions, fmt.Errorf("frame %d requested, the file has %d frame(s)", frame, di.Frames))
	}
	di.Frame = frame
	ds, err := parse(data)
	if err != nil {
		return nil, err
	}
	el, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		return nil, errors.New("no PixelData element")
	}
	pd, ok := el.Value.GetValue().(dicom.PixelDataInfo)
	if !ok {
		return nil, errors.New("PixelData could not be read")
	}
	if pd.ParseErr != nil {
		return nil, fmt.Errorf("PixelData: %w", pd.ParseErr)
	}
	if frame >= len(pd.Frames) {
		return nil, fmt.Errorf("frame %d requested, PixelData holds %d frame(s)", frame, len(pd.Frames))
	}
	fr := pd.Frames[frame]
	out := &Frame{Info: *di}
	var raw any // samples of a frame decoded to the uncompressed layout
	switch {
	case fr.Encapsulated && di.TransferSyntax == tsJPEGExtended:
		w, h, pix, err := jpeg.Decode12(fr.EncapsulatedData.Data, int64(di.Rows)*int64(di.Columns))
		switch {
		case err == nil && (w != di.Columns || h != di.Rows || di.Samples != 1):
			return nil, fmt.Errorf("frame %d: 12-bit JPEG of %dx%d, the header says %dx%d with %d samples", frame, w, h, di.Columns, di.Rows, di.Samples)
		case err == nil:
			raw = pix
		case !errors.Is(err, jpeg.ErrNotHandled): // 8-bit extended JPEG: decoded below as baseline
			return nil, fmt.Errorf("frame %d: JPEG: %w", frame, err)
		}
	case fr.Encapsulated && di.TransferSyntax != tsJPEGBaseline:
		if raw, err = decodeLosslessFrame(fr.EncapsulatedData.Data, di); err != nil {
			return nil, fmt.Errorf("frame %d: %w", frame, err)
		}
	case !fr.Encapsulated:
		nf, err := fr.GetNativeFrame()
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", frame, err)
		}
		raw = nf.RawDataSlice()
	}
	if raw == nil { // JPEG baseline (or 8-bit extended)
		m, err := jpeg.Decode(fr.EncapsulatedData.Data, int64(di.Rows)*int64(di.Columns))
		if err != nil {
			return nil, fmt.Errorf("frame %d: JPEG: %w", frame, err)
		}
		if b := m.Bounds(); b.Dx() != di.Columns || b.Dy() != di.Rows {
			return nil, fmt.Errorf("frame %d is %dx%d, the header says %dx%d", frame, b.Dx(), b.Dy(), di.Columns, di.Rows)
		}
		if g, ok := m.(*image.Gray); ok && di.Samples == 1 {
			out.Stored = make([]float64, di.Rows*di.Columns)
			for y := range di.Rows {
				for x := range di.Columns {
					out.Stored[y*di.Columns+x] = float64(g.Pix[y*g.Stride+x])
				}
			}
		} else {
			out.Image = m
		}
		return out, nil
	}
	samples, err := nativeSamples(raw, di)
	if err != nil {
		return nil, fmt.Errorf("frame %d: %w", frame, err)
	}
	if di.Samples == 3 {
		if out.RGB, err = nativeRGB(samples, di, &header); err != nil {
			return nil, err
		}
	} else {
		out.Stored = samples
	}
	return out, nil
}

// decodeLosslessFrame decodes a JPEG lossless or RLE frame into the layout
// of uncompressed PixelData.
func decodeLosslessFrame(data []byte, di *Info) (any, error) {
	if di.TransferSyntax == tsRLE {
		return decodeRLE(data, di)
	}
	img, err := jpeg.DecodeLossless(data, int64(di.Rows)*int64(di.Columns))
	if err != nil {
		return nil, fmt.Errorf("JPEG lossless: %w", err)
	}
	if img.W != di.Columns || img.H != di.Rows || img.Components != di.Samples {
		return nil, fmt.Errorf("JPEG lossless frame is %dx%d with %d components, the header says %dx%d with %d", img.W, img.H, img.Components, di.Columns, di.Rows, di.Samples)
	}
	if img.Precision > di.BitsAllocated {
		return nil, fmt.Errorf("JPEG lossless samples of %d bits exceed BitsAllocated %d", img.Precision, di.BitsAllocated)
	}
	if di.BitsAllocated == 8 {
		out := make([]uint8, len(img.Pix))
		for i, v := range img.Pix {
			out[i] = uint8(v)
		}
		return out, nil
	}
	return img.Pix, nil
}

// readInfo reads and checks the attributes that describe the pixels.
func readInfo(ds *dicom.Dataset) (*Info, error) {
	di := &Info{Frames: 1, Slope: 1}
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
		di.WindowCenter, di.WindowWidth, di.HasWindow = c, w, true
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
		return nil, imgerr.With(imgerr.ErrUnsupported, fmt.Errorf("transfer syntax %s (%s) is not supported (uncompressed, JPEG baseline and extended, JPEG lossless and RLE are)", di.TransferSyntax, name))
	}
	switch {
	case di.Samples != 1 && di.Samples != 3:
		return nil, imgerr.With(imgerr.ErrUnsupported, fmt.Errorf("SamplesPerPixel %d is not supported (1 or 3)", di.Samples))
	case di.BitsAllocated != 8 && di.BitsAllocated != 16 && di.BitsAllocated != 32:
		return nil, imgerr.With(imgerr.ErrUnsupported, fmt.Errorf("BitsAllocated %d is not supported (8, 16 or 32)", di.BitsAllocated))
	case di.BitsStored < 1 || di.BitsStored > di.BitsAllocated:
		return nil, fmt.Errorf("BitsStored %d does not fit BitsAllocated %d", di.BitsStored, di.BitsAllocated)
	case di.Samples == 3 && di.BitsAllocated != 8:
		return nil, imgerr.With(imgerr.ErrUnsupported, fmt.Errorf("colour with BitsAllocated %d is not supported (8)", di.BitsAllocated))
	}
	switch di.Photometric {
	case "MONOCHROME1", "MONOCHROME2":
		if di.Samples != 1 {
			return nil, fmt.Errorf("%s with SamplesPerPixel %d", di.Photometric, di.Samples)
		}
	case "RGB":
	case "YBR_FULL", "YBR_FULL_422":
		if di.TransferSyntax != tsJPEGBaseline {
			return nil, imgerr.With(imgerr.ErrUnsupported, fmt.Errorf("uncompressed %s is not supported", di.Photometric))
		}
	case "":
		return nil, errors.New("missing PhotometricInterpretation")
	default:
		return nil, imgerr.With(imgerr.ErrUnsupported, fmt.Errorf("PhotometricInterpretation %s is not supported", di.Photometric))
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
func nativeSamples(raw any, di *Info) ([]float64, error) {
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
func nativeRGB(s []float64, di *Info, ds *dicom.Dataset) ([]uint8, error) {
	if di.Photometric != "RGB" {
		return nil, imgerr.With(imgerr.ErrUnsupported, fmt.Errorf("uncompressed %s colour is not supported", di.Photometric))
	}
	planar, _ := elementInt(ds, tag.PlanarConfiguration)
	n := di.Rows * di.Columns
	pix := make([]uint8, 3*n)
	for i := range n {
		for c := range 3 {
			v := s[i*3+c]
			if planar == 1 {
				v = s[c*n+i]
			}
			pix[i*3+c] = uint8(v)
		}
	}
	return pix, nil
}
