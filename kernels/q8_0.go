package kernels

import (
	"encoding/binary"
	"math"
)

// Q8_0: blocks of 32 weights, 34 bytes: the float16 scale d, then 32 int8
// values q; weight j is q[j] * d.

// DequantizeQ8_0 widens len(dst)/32 blocks of src into dst.
func DequantizeQ8_0(dst []float32, src []byte) {
	for b := range len(dst) / QK8_0 {
		blk := src[b*Q8_0Bytes : (b+1)*Q8_0Bytes]
		d := f16At(blk)
		y := dst[b*QK8_0 : (b+1)*QK8_0]
		for j, q := range blk[2:] {
			y[j] = float32(int8(q)) * d
		}
	}
}

// QuantizeQ8_0 writes len(src)/32 blocks of src into dst as ggml's
// reference quantizer does: d = max|x| / 127 (stored as float16), q =
// round(x / d) half away from zero, computed with 1/d in float32.
func QuantizeQ8_0(dst []byte, src []float32) {
	for b := range len(src) / QK8_0 {
		x := src[b*QK8_0 : (b+1)*QK8_0]
		var amax float32
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		blk := dst[b*Q8_0Bytes : (b+1)*Q8_0Bytes]
		binary.LittleEndian.PutUint16(blk, F32ToF16(d))
		for j, v := range x {
			blk[2+j] = byte(int8(math.Round(float64(float32(v * id)))))
		}
	}
}

// dotQ8_0Ref is a Q8_0 row (whole blocks) dotted with x as dotQuantRows
// computes it: each block widened, dotted, the blocks' sums added in order.
func dotQ8_0Ref(row []byte, x []float32) float32 {
	var buf [QK8_0]float32
	var s float32
	for b := 0; b < len(row)/Q8_0Bytes; b++ {
		DequantizeQ8_0(buf[:], row[b*Q8_0Bytes:(b+1)*Q8_0Bytes])
		s += Dot(buf[:], x[b*QK8_0:(b+1)*QK8_0])
	}
	return s
}

// dot4x4Q8_0 computes out[r*4+t] = dot(row r, x row t) for four Q8_0 rows
// of blocks blocks (w[r*wstride:], strides in bytes) and four x rows
// (x[t*xstride:]): the AVX-512 kernel, prefetching as dot4x4BF16 does, or
// dotQ8_0Ref.
func dot4x4Q8_0(out *[16]float32, w []byte, wstride int, x []float32, xstride, blocks int, pf uintptr, lines int) {
	_ = w[3*wstride+blocks*Q8_0Bytes-1]
	_ = x[3*xstride+blocks*QK8_0-1]
	if !hasAVX512 {
		for i := range out {
			r, t := i/4, i%4
			out[i] = dotQ8_0Ref(w[r*wstride:r*wstride+blocks*Q8_0Bytes], x[t*xstride:])
		}
		return
	}
	dot4x4Q8_0AVX512(&w[0], wstride, &x[0], xstride, blocks, out, pf, lines)
}

// dot4x1Q8_0 is dot4x4Q8_0 for one x row, summing as it does for its
// first token.
func dot4x1Q8_0(out *[4]float32, w []byte, wstride int, x []float32, blocks int, pf uintptr, lines int) {
	_ = w[3*wstride+blocks*Q8_0Bytes-1]
	_ = x[blocks*QK8_0-1]
	if !hasAVX512 {
		for r := range out {
			out[r] = dotQ8_0Ref(w[r*wstride:r*wstride+blocks*Q8_0Bytes], x)
		}
		return
	}
	var sums [16]float32
	dot4x1Q8_0AVX512(&w[0], wstride, &x[0], blocks, &sums, pf, lines)
	for r := range out {
		out[r] = sums[r*4]
	}
}
