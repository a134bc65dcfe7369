package jpeg

import "image"

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

// ToRGB converts the YCbCr images this package decodes (*image.YCbCr,
// *SampledYCbCr) into interleaved 8-bit RGB, len 3 x width x height, as
// libjpeg does: chroma upsampled with its "fancy" triangle filter where it
// uses it (2x1, 2x2, 1x2), replicated otherwise, then its fixed-point
// conversion. ok is false for other images, or a subsampling image.YCbCr
// names but JPEG cannot produce.
func ToRGB(m image.Image) (pix []uint8, ok bool) {
	switch y := m.(type) {
	case *SampledYCbCr:
		return convertYCbCr(&y.YCbCr, y.HS, y.VS), true
	case *image.YCbCr:
		hs, vs, ok := subsampling(y.SubsampleRatio)
		if !ok {
			return nil, false
		}
		return convertYCbCr(y, hs, vs), true
	}
	return nil, false
}

// subsampling maps image.YCbCr's ratios to chroma factors.
func subsampling(r image.YCbCrSubsampleRatio) (hs, vs int, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 1, 1, true
	case image.YCbCrSubsampleRatio422:
		return 2, 1, true
	case image.YCbCrSubsampleRatio420:
		return 2, 2, true
	case image.YCbCrSubsampleRatio440:
		return 1, 2, true
	case image.YCbCrSubsampleRatio411:
		return 4, 1, true
	case image.YCbCrSubsampleRatio410:
		return 4, 2, true
	}
	return 0, 0, false
}

// convertYCbCr converts planes whose chroma is subsampled hs x vs.
func convertYCbCr(m *image.YCbCr, hs, vs int) []uint8 {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	out := make([]uint8, 3*w*h)
	cw, ch := (w+hs-1)/hs, (h+vs-1)/vs
	// libjpeg filters horizontally only chroma more than two samples wide.
	fancy := cw > 2
	cb := make([]uint8, max(w, 2*cw))
	cr := make([]uint8, max(w, 2*cw))
	for y := range h {
		upsampleChromaRow(cb, m.Cb, m.CStride, cw, ch, hs, vs, y, w, fancy)
		upsampleChromaRow(cr, m.Cr, m.CStride, cw, ch, hs, vs, y, w, fancy)
		yccRowToRGB(out[y*w*3:(y+1)*w*3], m.Y[y*m.YStride:y*m.YStride+w], cb[:w], cr[:w])
	}
	return out
}

// yccRowToRGB converts one row of full-resolution luma and chroma.
func yccRowToRGB(p, yrow, cb, cr []uint8) {
	head := 0
	if useYCCAVX2 {
		head = len(yrow) &^ 15
	}
	if head > 0 {
		yccToRGBAVX2(&p[0], &yrow[0], &cb[0], &cr[0], head)
	}
	yccRowToRGBRef(p[3*head:], yrow[head:], cb[head:], cr[head:])
}

// yccRowToRGBRef is the plain Go conversion (libjpeg's tables).
func yccRowToRGBRef(p, yrow, cb, cr []uint8) {
	cb, cr = cb[:len(yrow)], cr[:len(yrow)]
	for x, yv := range yrow {
		b, r := cb[x], cr[x]
		Y := int32(yv)
		q := p[3*x : 3*x+3 : 3*x+3]
		q[0] = clamp255(Y + crR[r])
		q[1] = clamp255(Y + ((cbG[b] + crG[r]) >> 16))
		q[2] = clamp255(Y + cbB[b])
	}
}

func clamp255(v int32) uint8 {
	if uint32(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return uint8(v)
}

// upsampleChromaRow fills out[:w] with the full-resolution chroma of image row
// y. 2x horizontal, 2x2 and 2x vertical subsampling use libjpeg's fancy
// upsampling (h2v1, h2v2 and h1v2 triangle filters; the horizontal ones only
// where fancy says so); other ratios replicate samples, as libjpeg does for
// them.
func upsampleChromaRow(out, c []uint8, stride, cw, ch, hs, vs, y, w int, fancy bool) {
	switch {
	case hs == 1 && vs == 2:
		cy, near, bias := y/2, y/2-1, 1 // upper row of a pair: the row above, rounding down
		if y%2 == 1 {
			near, bias = cy+1, 2
		}
		near = min(max(near, 0), ch-1)
		cur, nr := c[cy*stride:cy*stride+w], c[near*stride:near*stride+w]
		for x := range cur {
			out[x] = uint8((3*int(cur[x]) + int(nr[x]) + bias) >> 2)
		}
	case fancy && hs == 2 && vs == 1:
		h2v1Row(out, c[y*stride:y*stride+cw])
	case fancy && hs == 2 && vs == 2:
		cy := y / 2
		near := cy - 1 // the next nearest chroma row: above for even rows, below for odd
		if y%2 == 1 {
			near = cy + 1
		}
		near = min(max(near, 0), ch-1)
		h2v2Row(out, c[cy*stride:cy*stride+cw], c[near*stride:near*stride+cw])
	default:
		row := c[(y/vs)*stride:]
		for x := range w {
			out[x] = row[x/hs]
		}
	}
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
	near = near[:n]
	out = out[:2*n]
	this := int(cur[0])*3 + int(near[0])
	next := int(cur[1])*3 + int(near[1])
	out[0] = uint8((this*4 + 8) >> 4)
	out[1] = uint8((this*3 + next + 7) >> 4)
	last := this
	this = next
	i := 1
	if useYCCAVX2 && n-2 >= 16 {
		// Samples 1..k in the vector loop; it reads one sample either side.
		k := (n - 2) &^ 15
		h2v2RowAVX2(&out[2], &cur[1], &near[1], k)
		i = 1 + k
		last = int(cur[i-1])*3 + int(near[i-1])
		this = int(cur[i])*3 + int(near[i])
	}
	for ; i < n-1; i++ {
		next = int(cur[i+1])*3 + int(near[i+1])
		o := out[2*i : 2*i+2 : 2*i+2]
		o[0] = uint8((this*3 + last + 8) >> 4)
		o[1] = uint8((this*3 + next + 7) >> 4)
		last, this = this, next
	}
	out[2*n-2] = uint8((this*3 + last + 8) >> 4)
	out[2*n-1] = uint8((this*4 + 7) >> 4)
}
