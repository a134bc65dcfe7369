package imageproc

import (
	"fmt"
	"image"
	"image/color"

	"github.com/medgemma/medgemma/imageproc/jpeg"
)

// RGB is an 8-bit RGB image, pixels interleaved row by row (R, G, B, R, ...).
// It is what the model's preprocessing works on, as PIL's mode "RGB".
type RGB struct {
	W, H int
	Pix  []uint8
}

// NewRGB returns a black image.
func NewRGB(w, h int) *RGB { return &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)} }

// At returns the pixel at x, y.
func (m *RGB) At(x, y int) (r, g, b uint8) {
	i := (y*m.W + x) * 3
	return m.Pix[i], m.Pix[i+1], m.Pix[i+2]
}

// Image returns the image as a standard library image (for encoding).
func (m *RGB) Image() *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i, j := 0, 0; i < len(m.Pix); i, j = i+3, j+4 {
		out.Pix[j], out.Pix[j+1], out.Pix[j+2], out.Pix[j+3] = m.Pix[i], m.Pix[i+1], m.Pix[i+2], 255
	}
	return out
}

// Crop returns a copy of the rectangle x0..x1, y0..y1, clipped to the image.
func (m *RGB) Crop(x0, y0, x1, y1 int) *RGB {
	x0, y0 = max(x0, 0), max(y0, 0)
	x1, y1 = min(x1, m.W), min(y1, m.H)
	out := NewRGB(max(x1-x0, 0), max(y1-y0, 0))
	for y := y0; y < y1; y++ {
		copy(out.Pix[(y-y0)*out.W*3:(y-y0+1)*out.W*3], m.Pix[(y*m.W+x0)*3:(y*m.W+x1)*3])
	}
	return out
}

// ToRGB converts a decoded image to RGB the way PIL's convert("RGB") does:
// alpha is dropped (not composited), palettes are expanded, gray is
// replicated, 16-bit gray is scaled by round(v/257) and other 16-bit images
// keep their high byte (as PIL reads them), CMYK uses PIL's formula, and
// YCbCr (JPEG, WebP) is upsampled and converted as libjpeg does.
func ToRGB(src image.Image) (*RGB, error) {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("image is empty (%dx%d)", w, h)
	}
	out := NewRGB(w, h)
	p := out.Pix
	switch m := src.(type) {
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = v, v, v
			}
		}
	case *image.Gray16:
		for y := range h {
			for x := range w {
				o := y*m.Stride + x*2
				v := gray16To8(uint16(m.Pix[o])<<8 | uint16(m.Pix[o+1]))
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = v, v, v
			}
		}
	case *image.RGBA:
		copyChannels(p, m.Pix, m.Stride, w, h, 4, 1)
	case *image.NRGBA:
		copyChannels(p, m.Pix, m.Stride, w, h, 4, 1)
	case *image.RGBA64:
		copyChannels(p, m.Pix, m.Stride, w, h, 8, 2)
	case *image.NRGBA64:
		copyChannels(p, m.Pix, m.Stride, w, h, 8, 2)
	case *image.Paletted:
		var pal [256][3]uint8
		for i, c := range m.Palette {
			pal[i] = paletteRGB(c)
		}
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = pal[v][0], pal[v][1], pal[v][2]
			}
		}
	case *image.CMYK:
		for y := range h {
			for x := range w {
				o := y*m.Stride + x*4
				i := (y*w + x) * 3
				nk := 255 - int(m.Pix[o+3])
				for c := range 3 {
					p[i+c] = clampByte(nk - mulDiv255(int(m.Pix[o+c]), nk))
				}
			}
		}
	case *jpeg.SampledYCbCr, *image.YCbCr, *image.NYCbCrA:
		// libjpeg's chroma upsampling and conversion.
		if a, ok := m.(*image.NYCbCrA); ok {
			src = &a.YCbCr
		}
		pix, ok := jpeg.ToRGB(src)
		if !ok {
			return nil, fmt.Errorf("unsupported YCbCr subsampling %v", src.(*image.YCbCr).SubsampleRatio)
		}
		out.Pix = pix
	default:
		// Any other image type: through the color model, alpha dropped.
		for y := range h {
			for x := range w {
				c := color.NRGBAModel.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = c.R, c.G, c.B
			}
		}
	}
	return out, nil
}

// gray16To8 scales a 16-bit gray level to 8 bits, rounding half up:
// round(v/257).
func gray16To8(v uint16) uint8 { return uint8((uint32(v)*2 + 257) / 514) }

// copyChannels copies the first three channels of interleaved pixels of
// `size` bytes, taking the high byte of each `depth`-byte sample.
func copyChannels(dst, src []uint8, stride, w, h, size, depth int) {
	for y := range h {
		row := src[y*stride:]
		for x := range w {
			i, o := (y*w+x)*3, x*size
			dst[i], dst[i+1], dst[i+2] = row[o], row[o+depth], row[o+2*depth]
		}
	}
}

// paletteRGB returns a palette entry's color values without alpha handling:
// PIL expands the palette's RGB and ignores transparency.
func paletteRGB(c color.Color) [3]uint8 {
	switch v := c.(type) {
	case color.NRGBA:
		return [3]uint8{v.R, v.G, v.B}
	case color.RGBA:
		if v.A == 0xff || v.A == 0 {
			return [3]uint8{v.R, v.G, v.B}
		}
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return [3]uint8{n.R, n.G, n.B}
}

// mulDiv255 is PIL's MULDIV255: a*b/255 rounded, in integers.
func mulDiv255(a, b int) int {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

func clampByte(v int) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}
