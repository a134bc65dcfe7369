package imageproc

import (
	"fmt"
	"math"

	"github.com/medgemma/medgemma/imageproc/dicom"
)

// DICOMInfo is what DICOM decoding read from the file (dicom.Info) and what
// rendering did.
type DICOMInfo struct {
	dicom.Info
	// The file's first WindowCenter / WindowWidth, when present.
	FileWindow *Window
	// Min and Max are the frame's modality values (Hounsfield units for CT).
	Min, Max float64
	// Rendering says how the values became RGB, e.g. "CT windows 0,2048 |
	// 175,80 | 40,80" or "stretched over the full range".
	Rendering string
}

// decodeDICOM decodes one frame of a DICOM file (imageproc/dicom) and
// renders it with modality-aware defaults.
func decodeDICOM(data []byte, opts Options) (*RGB, *Info, error) {
	f, err := dicom.Decode(data, opts.Frame, opts.MaxPixels)
	if err != nil {
		return nil, nil, err
	}
	di := &DICOMInfo{Info: f.Info}
	if f.HasWindow {
		di.FileWindow = &Window{Center: f.WindowCenter, Width: f.WindowWidth}
	}
	var img *RGB
	switch {
	case f.Stored != nil:
		if img, err = renderGray(f.Stored, di, opts.Window); err != nil {
			return nil, nil, fmt.Errorf("DICOM: %w", err)
		}
	case opts.Window != nil:
		return nil, nil, withKind(ErrOptions, fmt.Errorf("DICOM: a window applies to grayscale images; this one is %s", di.Photometric))
	case f.RGB != nil:
		img = &RGB{W: di.Columns, H: di.Rows, Pix: f.RGB}
	default:
		if img, err = ToRGB(f.Image); err != nil {
			return nil, nil, fmt.Errorf("DICOM: frame %d: %w", di.Frame, err)
		}
	}
	if img.W != di.Columns || img.H != di.Rows || len(img.Pix) != 3*img.W*img.H {
		return nil, nil, fmt.Errorf("DICOM: frame %d decoded to %dx%d, the header says %dx%d", di.Frame, img.W, img.H, di.Columns, di.Rows)
	}
	if f.Stored == nil {
		di.Rendering = "colour as stored"
	}
	return img, &Info{Format: "dicom", Width: di.Columns, Height: di.Rows, Mode: dicomMode(di), DICOM: di}, nil
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
