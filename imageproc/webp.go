package imageproc

import (
	"fmt"
	"image"
)

// Lossy WebP stores limited-range BT.601 YUV 4:2:0. PIL decodes it with
// libwebp, whose "fancy" upsampler interpolates chroma between the two
// nearest chroma rows and columns (weights 9, 3, 3, 1) and whose
// fixed-point conversion (14-bit, VP8YUVToR/G/B) differs from JPEG's. This
// file does the same, so lossy WebP decodes like PIL.

// webpToRGB converts a decoded lossy WebP frame.
func webpToRGB(m *image.YCbCr) (*RGB, error) {
	if m.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return nil, fmt.Errorf("unexpected WebP chroma subsampling %v", m.SubsampleRatio)
	}
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	ch := (h + 1) / 2
	cw := (w + 1) / 2
	out := NewRGB(w, h)
	u := make([]uint8, w)
	v := make([]uint8, w)
	for y := range h {
		near, far := 0, 0
		switch {
		case y == 0:
		case y%2 == 1:
			near, far = (y-1)/2, min((y+1)/2, ch-1)
		default:
			near, far = y/2, y/2-1
		}
		rowOf := func(plane []uint8, r int) []uint8 { return plane[r*m.CStride : r*m.CStride+cw] }
		webpUpsampleRow(u, rowOf(m.Cb, near), rowOf(m.Cb, far))
		webpUpsampleRow(v, rowOf(m.Cr, near), rowOf(m.Cr, far))
		yrow := m.Y[y*m.YStride : y*m.YStride+w]
		p := out.Pix[y*w*3:]
		for x, yv := range yrow {
			p[3*x], p[3*x+1], p[3*x+2] = vp8YUVToRGB(int(yv), int(u[x]), int(v[x]))
		}
	}
	return out, nil
}

// webpUpsampleRow interpolates one output row of chroma from the nearer chroma
// row (weight 3) and the further one (weight 1), as libwebp's UpsampleRgbLinePair.
func webpUpsampleRow(out, near, far []uint8) {
	w := len(out)
	n := func(i int) int { return int(near[i]) }
	f := func(i int) int { return int(far[i]) }
	out[0] = uint8((3*n(0) + f(0) + 2) >> 2)
	last := (w - 1) >> 1
	for x := 1; x <= last; x++ {
		avg := n(x-1) + n(x) + f(x-1) + f(x) + 8
		out[2*x-1] = uint8((((avg + 2*(n(x)+f(x-1))) >> 3) + n(x-1)) >> 1)
		out[2*x] = uint8((((avg + 2*(n(x-1)+f(x))) >> 3) + n(x)) >> 1)
	}
	if w%2 == 0 {
		out[w-1] = uint8((3*n(last) + f(last) + 2) >> 2)
	}
}

// vp8YUVToRGB is libwebp's fixed-point limited-range conversion.
func vp8YUVToRGB(y, u, v int) (r, g, b uint8) {
	mulHi := func(a, c int) int { return (a * c) >> 8 }
	clip := func(x int) uint8 {
		if x&^(256<<6-1) == 0 {
			return uint8(x >> 6)
		}
		if x < 0 {
			return 0
		}
		return 255
	}
	yy := mulHi(y, 19077)
	return clip(yy + mulHi(v, 26149) - 14234),
		clip(yy - mulHi(u, 6419) - mulHi(v, 13320) + 8708),
		clip(yy + mulHi(u, 33050) - 17685)
}
