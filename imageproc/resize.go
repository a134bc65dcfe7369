package imageproc

import "math"

// Rounding selects the fixed-point precision of the resampling weights. The
// filter, the weights and the order of the passes are PIL's BILINEAR in both
// cases; only the integer precision of the weights differs, which changes a
// few pixels by one level.
type Rounding int

const (
	// RoundingTransformers is what transformers 5 computes for MedGemma
	// (Gemma3ImageProcessor resizes uint8 tensors with torchvision, whose
	// antialiased bilinear kernel is a port of Pillow-SIMD with int16 weights
	// at the largest precision that fits). It reproduces the reference
	// pixel for pixel, and it is the default.
	RoundingTransformers Rounding = iota
	// RoundingPIL is Pillow's own Image.resize(BILINEAR): int32 weights with
	// 22 fractional bits.
	RoundingPIL
)

// pilPrecisionBits is Pillow's PRECISION_BITS (32 - 8 - 2).
const pilPrecisionBits = 22

// coeffs are the integer weights of one resampling pass: output pixel i reads
// size[i] input pixels starting at start[i], with weights k[i*ksize:].
type coeffs struct {
	start, size []int
	k           []int32
	ksize       int
	precision   uint
}

// bilinearFilter is PIL's triangle filter, support 1.
func bilinearFilter(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// computeCoeffs computes the weights that map inSize pixels onto outSize,
// antialiased: when shrinking, the filter widens by the scale factor so every
// input pixel contributes. The floating-point part is Pillow's
// precompute_coeffs; the rounding to integers follows r. The float weights
// are computed twice (once for their maximum, which sets the precision, then
// to round them) rather than stored: a table of them would be 8 bytes per
// input pixel along the axis.
func computeCoeffs(inSize, outSize int, r Rounding) coeffs {
	scale := float64(inSize) / float64(outSize)
	filterScale := max(scale, 1.0)
	support := 1.0 * filterScale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{start: make([]int, outSize), size: make([]int, outSize), k: make([]int32, outSize*ksize), ksize: ksize}
	ww := make([]float64, ksize)
	ss := 1.0 / filterScale
	// weights fills ww with output pixel xx's normalized weights and returns
	// how many there are.
	weights := func(xx int) int {
		center := (float64(xx) + 0.5) * scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		total := 0.0
		for x := 0; x < xmax; x++ {
			v := bilinearFilter((float64(x+xmin) - center + 0.5) * ss)
			ww[x] = v
			total += v
		}
		for x := 0; x < xmax; x++ {
			if total != 0 {
				ww[x] /= total
			}
		}
		c.start[xx], c.size[xx] = xmin, max(xmax, 0)
		return max(xmax, 0)
	}
	switch r {
	case RoundingPIL:
		c.precision = pilPrecisionBits
	default:
		// torchvision: the largest precision (below 22) at which the biggest
		// weight still fits in an int16.
		wmax := 0.0
		for xx := range outSize {
			for _, v := range ww[:weights(xx)] {
				wmax = max(wmax, v)
			}
		}
		p := uint(0)
		for ; p < 22; p++ {
			if int(0.5+wmax*float64(int(1)<<(p+1))) >= 1<<15 {
				break
			}
		}
		c.precision = p
	}
	scaleInt := float64(int64(1) << c.precision)
	for xx := range outSize {
		k := c.k[xx*ksize:]
		for i, v := range ww[:weights(xx)] {
			if v < 0 {
				k[i] = int32(-0.5 + v*scaleInt)
			} else {
				k[i] = int32(0.5 + v*scaleInt)
			}
		}
	}
	return c
}

// clip8 takes an accumulated sum back to a byte.
func clip8(v int32, precision uint) uint8 {
	v >>= precision
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resampleHorizontal resizes the width of an interleaved RGB image.
func resampleHorizontal(dst, src []uint8, inW, h int, c coeffs) {
	// The AVX2 pass lays out 32 bytes of weights per four taps of every
	// output pixel; where that table would outgrow the image itself (a
	// filter thousands of pixels wide) the plain pass is used.
	table := len(c.start) * (c.ksize + 3) / 4 * 32
	if useResizeAVX2 && c.fitsInt16() && table <= max(len(src), 1<<20) {
		resampleHorizontalAVX2(dst, src, inW, h, c)
		return
	}
	resampleHorizontalRef(dst, src, inW, h, c)
}

// resampleHorizontalRef is the plain Go horizontal pass.
func resampleHorizontalRef(dst, src []uint8, inW, h int, c coeffs) {
	outW := len(c.start)
	half := c.half()
	for y := range h {
		in := src[y*inW*3 : (y+1)*inW*3]
		out := dst[y*outW*3 : (y+1)*outW*3]
		for xx := range outW {
			k := c.k[xx*c.ksize : xx*c.ksize+c.size[xx]]
			px := in[c.start[xx]*3 : (c.start[xx]+len(k))*3]
			s0, s1, s2 := half, half, half
			for _, kv := range k {
				_ = px[2]
				s0 += int32(px[0]) * kv
				s1 += int32(px[1]) * kv
				s2 += int32(px[2]) * kv
				px = px[3:]
			}
			o := out[3*xx : 3*xx+3 : 3*xx+3]
			o[0], o[1], o[2] = clip8(s0, c.precision), clip8(s1, c.precision), clip8(s2, c.precision)
		}
	}
}

// half is the rounding term added before the shift.
func (c coeffs) half() int32 {
	if c.precision == 0 {
		return 0
	}
	return 1 << (c.precision - 1)
}

// fitsInt16 reports whether the SIMD passes, which multiply int16 weights,
// compute the same sums: every weight within int16 (RoundingTransformers'
// weights always are; RoundingPIL's 22-bit ones are not).
func (c coeffs) fitsInt16() bool {
	for _, v := range c.k {
		if v < -1<<15 || v >= 1<<15 {
			return false
		}
	}
	return true
}

// resampleHorizontalAVX2 lays the weights out for resampleRowAVX2, four
// taps per group, and runs it row by row. The kernel reads past the taps of
// the last output pixels, so the last rows go through a padded copy.
func resampleHorizontalAVX2(dst, src []uint8, inW, h int, c coeffs) {
	outW := len(c.start)
	groups := (c.ksize + 3) / 4
	offs := make([]int32, outW)
	w := make([]int16, outW*groups*16)
	for xx := range outW {
		offs[xx] = int32(c.start[xx] * 3)
		for t := range c.size[xx] {
			kv := int16(c.k[xx*c.ksize+t])
			g := w[(xx*groups+t/4)*16:]
			lane := g[(t%4/2)*8:]
			for ch := range 3 {
				lane[2*ch+t%2] = kv
			}
		}
	}
	half, shift := c.half(), uint64(c.precision)
	const slack = 16
	reach := 3*(groups*4) + slack // bytes read from a pixel's offset
	var padded []uint8
	for y := range h {
		in := src[y*inW*3:]
		if len(in) < int(offs[outW-1])+reach {
			if padded == nil {
				padded = make([]uint8, inW*3+reach)
			}
			copy(padded, in[:inW*3])
			in = padded
		}
		resampleRowAVX2(&dst[y*outW*3], &in[0], &offs[0], &w[0], outW, groups, half, shift)
	}
}

// resampleVertical resizes the height of an interleaved image whose rows are
// stride bytes long, accumulating whole rows at a time.
func resampleVertical(dst, src []uint8, stride int, c coeffs) {
	simd := 0 // bytes of each row done by the AVX2 pass
	if useResizeAVX2 && c.fitsInt16() {
		simd = stride &^ 31
	}
	outH := len(c.start)
	half := c.half()
	acc := make([]int32, stride-simd)
	for yy := range outH {
		k := c.k[yy*c.ksize : yy*c.ksize+c.size[yy]]
		first := c.start[yy] * stride
		if simd > 0 {
			resampleColumnsAVX2(&dst[yy*stride], &src[first], stride, simd, &k[0], len(k), half, uint64(c.precision))
		}
		for i := range acc {
			acc[i] = half
		}
		for y, kv := range k {
			row := src[first+y*stride+simd : first+(y+1)*stride]
			row = row[:len(acc)]
			for i, v := range row {
				acc[i] += int32(v) * kv
			}
		}
		out := dst[yy*stride+simd : (yy+1)*stride]
		out = out[:len(acc)]
		for i, v := range acc {
			out[i] = clip8(v, c.precision)
		}
	}
}

// Resize resamples an image to w x h with PIL's antialiased BILINEAR filter:
// a horizontal pass, then a vertical pass, each rounding to 8 bits, a pass
// skipped when that dimension does not change.
//
// Pillow's order makes an intermediate image of w x img.H pixels. For an
// image far narrower than it is tall (a 1 x 64,000,000 PNG is 124 KB and
// inside the pixel limit) that would be hundreds of times the input and the
// output together, so when the intermediate would exceed four times the
// larger of the two, the vertical pass goes first (its intermediate is
// img.W x h). The result then differs from Pillow's by the rounding of the
// other intermediate, at most one level (tested); no image with both sides
// of at least a quarter of the output size is affected.
func Resize(img *RGB, w, h int, r Rounding) *RGB {
	return resize(img, w, h, r, verticalFirst(img.W, img.H, w, h))
}

// verticalFirst reports whether Resize takes the vertical pass first.
func verticalFirst(inW, inH, w, h int) bool {
	if w == inW || h == inH {
		return false // one pass
	}
	pillow := int64(w) * int64(inH)
	bound := 4 * max(int64(inW)*int64(inH), int64(w)*int64(h))
	return pillow > bound && int64(inW)*int64(h) < pillow
}

func resize(img *RGB, w, h int, r Rounding, vFirst bool) *RGB {
	src, inW, inH := img.Pix, img.W, img.H
	horizontal := func() {
		if w != inW {
			c := computeCoeffs(inW, w, r)
			tmp := make([]uint8, w*inH*3)
			resampleHorizontal(tmp, src, inW, inH, c)
			src, inW = tmp, w
		}
	}
	vertical := func() {
		if h != inH {
			c := computeCoeffs(inH, h, r)
			tmp := make([]uint8, inW*h*3)
			resampleVertical(tmp, src, inW*3, c)
			src, inH = tmp, h
		}
	}
	if vFirst {
		vertical()
		horizontal()
	} else {
		horizontal()
		vertical()
	}
	if w == img.W && h == img.H {
		src = append([]uint8(nil), src...) // no pass: a copy, as Pillow returns
	}
	return &RGB{W: w, H: h, Pix: src}
}
