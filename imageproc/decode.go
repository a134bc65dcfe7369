package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"

	"github.com/medgemma/medgemma/imageproc/internal/imgerr"
	"github.com/medgemma/medgemma/imageproc/jpeg"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// DefaultMaxPixels is the largest image (width x height, per frame) decoded
// unless Options.MaxPixels says otherwise: 64 megapixels.
const DefaultMaxPixels = 64 << 20

// Options control decoding.
type Options struct {
	// MaxPixels refuses larger images from their header, before decoding;
	// 0 means DefaultMaxPixels.
	MaxPixels int64
	// Frame selects the frame of a multi-frame DICOM (0, the first, by default).
	Frame int
	// Window, when set, maps grayscale values through a window instead of the
	// defaults (DICOM: modality values such as Hounsfield units; 16-bit PNG
	// or TIFF: stored values).
	Window *Window
}

// Info describes a decoded image.
type Info struct {
	Format        string // png, jpeg, gif, bmp, tiff, webp, dicom
	Width, Height int
	// Mode is the pixel layout in PIL's terms: L, LA, I;16, RGB, RGBA, P,
	// CMYK, YCbCr.
	Mode string
	// Orientation is the EXIF orientation applied (2..8), as transformers'
	// load_image applies it; 0 when the image is stored upright. Width and
	// Height are as stored, before it.
	Orientation int
	DICOM       *DICOMInfo // DICOM files only
}

// DecodeFile reads and decodes an image file. Errors name the file.
func DecodeFile(path string, opts Options) (*RGB, *Info, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	img, info, err := Decode(data, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, info, nil
}

// Decode decodes an image of any supported format, detected from its first
// bytes, to RGB. Its errors are of the kinds in errors.go (errors.Is).
func Decode(data []byte, opts Options) (img *RGB, info *Info, err error) {
	defer func() {
		// The decoders are well tested, but a malformed file must never take
		// the process down.
		if r := recover(); r != nil {
			img, info, err = nil, nil, fmt.Errorf("malformed image: decoder failed: %v", r)
		}
		err = imgerr.Classified(err)
	}()
	if opts.Frame < 0 {
		return nil, nil, withKind(ErrOptions, fmt.Errorf("frame %d: frames count from 0", opts.Frame))
	}
	if opts.MaxPixels <= 0 {
		opts.MaxPixels = DefaultMaxPixels
	}
	format := sniff(data)
	if format == "dicom" {
		return decodeDICOM(data, opts)
	}
	if format == "" {
		if len(data) == 0 {
			return nil, nil, errors.New("empty file")
		}
		return nil, nil, withKind(ErrUnsupported, errors.New("unknown image format (supported: PNG, JPEG, GIF, BMP, TIFF, WebP, DICOM)"))
	}
	m, err := decoders[format](data, opts.MaxPixels)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", format, err)
	}
	info = &Info{Format: format, Width: m.Bounds().Dx(), Height: m.Bounds().Dy(), Mode: mode(m)}
	switch y := m.(type) {
	case *image.YCbCr:
		if format == "webp" {
			img, err = webpToRGB(y)
		}
	case *image.NYCbCrA:
		if format == "webp" {
			img, err = webpToRGB(&y.YCbCr)
		}
	}
	switch {
	case opts.Window != nil:
		img, err = windowGray(m, *opts.Window)
	case img == nil && err == nil:
		img, err = ToRGB(m)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", format, err)
	}
	if o := exifOrientation(format, data); o != 1 {
		img = orient(img, o)
		info.Orientation = o
	}
	return img, info, nil
}

// decoders decode each format's bytes, refusing from the header an image
// over maxPixels pixels before decoding it. JPEG has its own decoder
// (imageproc/jpeg).
var decoders = map[string]func(data []byte, maxPixels int64) (image.Image, error){
	"jpeg": jpeg.Decode,
	"png":  checked(png.DecodeConfig, png.Decode),
	"gif":  decodeGIF,
	"bmp":  checked(bmp.DecodeConfig, bmp.Decode),
	"tiff": checked(tiff.DecodeConfig, tiff.Decode),
	"webp": checked(webp.DecodeConfig, webp.Decode),
}

// checked wraps an image package's decoder with the size check from its
// header.
func checked(config func(io.Reader) (image.Config, error), decode func(io.Reader) (image.Image, error)) func([]byte, int64) (image.Image, error) {
	return func(data []byte, maxPixels int64) (image.Image, error) {
		cfg, err := config(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("header: %w", err)
		}
		if err := checkSize(cfg.Width, cfg.Height, maxPixels); err != nil {
			return nil, err
		}
		return decode(bytes.NewReader(data))
	}
}

// sniff names the format from the file's magic bytes.
func sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return "jpeg"
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "gif"
	case bytes.HasPrefix(b, []byte("BM")):
		return "bmp"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "tiff"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "webp"
	case len(b) >= 132 && string(b[128:132]) == "DICM":
		return "dicom"
	}
	return ""
}

// mode names the decoded layout in PIL's terms.
func mode(m image.Image) string {
	switch m.(type) {
	case *image.Gray:
		return "L"
	case *image.Gray16:
		return "I;16"
	case *image.Paletted:
		return "P"
	case *image.CMYK:
		return "CMYK"
	case *image.YCbCr, *jpeg.SampledYCbCr:
		return "YCbCr"
	case *image.NYCbCrA:
		return "YCbCrA"
	case *image.NRGBA, *image.NRGBA64:
		return "RGBA"
	}
	return "RGB"
}

// windowGray maps a grayscale image through a window.
func windowGray(m image.Image, w Window) (*RGB, error) {
	l := w.prepare()
	b := m.Bounds()
	out := NewRGB(b.Dx(), b.Dy())
	var at func(x, y int) float64
	switch g := m.(type) {
	case *image.Gray:
		at = func(x, y int) float64 { return float64(g.Pix[y*g.Stride+x]) }
	case *image.Gray16:
		at = func(x, y int) float64 {
			o := y*g.Stride + 2*x
			return float64(uint16(g.Pix[o])<<8 | uint16(g.Pix[o+1]))
		}
	default:
		return nil, withKind(ErrOptions, fmt.Errorf("a window applies to grayscale images; this one is %s", mode(m)))
	}
	for y := range out.H {
		for x := range out.W {
			v := l.apply(at(x, y))
			i := (y*out.W + x) * 3
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = v, v, v
		}
	}
	return out, nil
}
