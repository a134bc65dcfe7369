package imageproc

import (
	"fmt"
	"image"
)

// Go's image/jpeg hands back the YCbCr planes as stored, chroma subsampled,
// and its own conversion repeats each chroma sample. PIL decodes with
// libjpeg(-turbo), which interpolates the chroma ("fancy upsampling", a
// triangle filter) and converts with its own fixed-point tables. Doing the
// same here brings colour JPEGs to within the small IDCT differences of the
// two decoders.

// libjpeg's fixed-point YCbCr -> RGB tables (jdcolor.c), built once.
var (
	crR, cbB [256]int32
	crG, cbG [256]int32
)

func init() {
	const scaleBits = 16
	const half = 1 << (scaleBits - 1)
	fix := func(x float64) int32 { return int32(x*(1<<scaleBits) + 0.5) }
	for i := range 256 {
		x := int32(i - 128)
		crR[i] = (fix(1.40200)*x + half) >> scaleBits
		cbB[i] = (fix(1.77200)*x + half) >> scaleBits
		crG[i] = -fix(0.71414) * x
		cbG[i] = -fix(0.34414)*x + half
	}
}

// ycbcrToRGB upsamples the chroma planes like libjpeg and converts.
func ycbcrToRGB(out *RGB, m *image.YCbCr) error {
	w, h := out.W, out.H
	var hs, vs int // chroma subsampling factors
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio422:
		hs, vs = 2, 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		hs, vs = 1, 2
	case image.YCbCrSubsampleRatio411:
		hs, vs = 4, 1
	case image.YCbCrSubsampleRatio410:
		hs, vs = 4, 2
	default:
		return fmt.Errorf("unsupported YCbCr subsampling %v", m.SubsampleRatio)
	}
	cw, ch := (w+hs-1)/hs, (h+vs-1)/vs
	cb := upsampleChroma(m.Cb, m.CStride, cw, ch, hs, vs, w, h)
	cr := upsampleChroma(m.Cr, m.CStride, cw, ch, hs, vs, w, h)
	p := out.Pix
	for y := range h {
		yrow := m.Y[y*m.YStride : y*m.YStride+w]
		for x, yv := range yrow {
			b, r := cb[y*w+x], cr[y*w+x]
			Y := int32(yv)
			i := (y*w + x) * 3
			p[i] = clampByte(int(Y + crR[r]))
			p[i+1] = clampByte(int(Y + ((cbG[b] + crG[r]) >> 16)))
			p[i+2] = clampByte(int(Y + cbB[b]))
		}
	}
	return nil
}

// upsampleChroma returns a full-resolution w x h chroma plane. 2x horizontal
// and 2x2 subsampling use libjpeg's fancy upsampling (h2v1 and h2v2
// triangle filters); other ratios replicate samples, as libjpeg does for them.
func upsampleChroma(c []uint8, stride, cw, ch, hs, vs, w, h int) []uint8 {
	out := make([]uint8, w*h)
	row := make([]uint8, 2*cw)
	switch {
	case hs == 2 && vs == 1 && cw >= 2:
		for y := range h {
			h2v1Row(row, c[y*stride:y*stride+cw])
			copy(out[y*w:(y+1)*w], row)
		}
	case hs == 2 && vs == 2 && cw >= 2:
		for y := range h {
			cy := y / 2
			near := cy - 1 // the next nearest chroma row: above for even rows, below for odd
			if y%2 == 1 {
				near = cy + 1
			}
			near = min(max(near, 0), ch-1)
			h2v2Row(row, c[cy*stride:cy*stride+cw], c[near*stride:near*stride+cw])
			copy(out[y*w:(y+1)*w], row)
		}
	default:
		for y := range h {
			for x := range w {
				out[y*w+x] = c[(y/vs)*stride+x/hs]
			}
		}
	}
	return out
}

// h2v1Row is libjpeg's h2v1_fancy_upsample for one row: each output sample is
// 3/4 of the nearer input sample plus 1/4 of the further one.
func h2v1Row(out, in []uint8) {
	n := len(in)
	v := int(in[0])
	out[0] = in[0]
	out[1] = uint8((v*3 + int(in[1]) + 2) >> 2)
	for i := 1; i < n-1; i++ {
		v = int(in[i]) * 3
		out[2*i] = uint8((v + int(in[i-1]) + 1) >> 2)
		out[2*i+1] = uint8((v + int(in[i+1]) + 2) >> 2)
	}
	v = int(in[n-1])
	out[2*n-2] = uint8((v*3 + int(in[n-2]) + 1) >> 2)
	out[2*n-1] = in[n-1]
}

// h2v2Row is libjpeg's h2v2_fancy_upsample for one output row: vertically 3/4
// of the nearer chroma row plus 1/4 of the next nearest, then horizontally the
// same triangle.
func h2v2Row(out, cur, near []uint8) {
	n := len(cur)
	colsum := func(i int) int { return int(cur[i])*3 + int(near[i]) }
	this, next := colsum(0), colsum(1)
	out[0] = uint8((this*4 + 8) >> 4)
	out[1] = uint8((this*3 + next + 7) >> 4)
	last := this
	this = next
	for i := 1; i < n-1; i++ {
		next = colsum(i + 1)
		out[2*i] = uint8((this*3 + last + 8) >> 4)
		out[2*i+1] = uint8((this*3 + next + 7) >> 4)
		last, this = this, next
	}
	out[2*n-2] = uint8((this*3 + last + 8) >> 4)
	out[2*n-1] = uint8((this*4 + 7) >> 4)
}
