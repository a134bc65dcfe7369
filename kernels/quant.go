package kernels

import (
	"encoding/binary"
	"math"
)

// The block formats of ggml (llama.cpp), in which GGUF files store
// quantized weights: each block of 32 (Q8_0, Q4_0) or 256 (the K types)
// weights holds small integers and the float16 scales that turn them back
// into weights. The dequantizations here compute what ggml's reference
// (gguf-py) does, bit for bit: every product is rounded to float32 on its
// own (the explicit conversions keep Go from fusing a multiply and an add).

// Block sizes: weights per block and bytes per block.
const (
	QK8_0      = 32
	Q8_0Bytes  = 34
	QK4_0      = 32
	Q4_0Bytes  = 18
	QKK        = 256 // the K types' super-block
	Q4_KBytes  = 144
	Q5_KBytes  = 176
	Q6_KBytes  = 210
	kScaleSize = 12 // Q4_K and Q5_K: eight 6-bit scales and mins
)

func f16At(b []byte) float32 { return F16ToF32(binary.LittleEndian.Uint16(b)) }

// BlockSize is the weights per block of a quantized dtype (1 for the float
// types).
func BlockSize(d DType) int {
	switch d {
	case Q8_0, Q4_0:
		return 32
	case Q4_K, Q5_K, Q6_K:
		return QKK
	}
	return 1
}

// RowBytes is the bytes of n weights of dtype d (n a multiple of its block
// size).
func RowBytes(d DType, n int) int {
	switch d {
	case F32:
		return 4 * n
	case BF16, F16:
		return 2 * n
	case Q8_0:
		return n / QK8_0 * Q8_0Bytes
	case Q4_0:
		return n / QK4_0 * Q4_0Bytes
	case Q4_K:
		return n / QKK * Q4_KBytes
	case Q5_K:
		return n / QKK * Q5_KBytes
	case Q6_K:
		return n / QKK * Q6_KBytes
	}
	return 0
}

// Dequantize widens len(dst) weights of dtype d stored little-endian in src
// into dst, as ggml does.
func Dequantize(d DType, dst []float32, src []byte) {
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case Q8_0:
		DequantizeQ8_0(dst, src)
	case Q4_0:
		DequantizeQ4_0(dst, src)
	case Q4_K:
		DequantizeQ4_K(dst, src)
	case Q5_K:
		DequantizeQ5_K(dst, src)
	case Q6_K:
		DequantizeQ6_K(dst, src)
	default:
		panic("kernels.Dequantize: " + d.String())
	}
}

// dotQuantRows computes, for weight rows lo..hi of a quantized matrix and n
// tokens of x, out[t*rows+r] = dot(row r, x row t): each block of a row is
// widened once into a buffer on the stack and dotted with every token's
// slice of x, the blocks' sums added in order, so a token's result does not
// depend on the tokens beside it. (The reference path; per-format SIMD dot
// products are to come.)
func dotQuantRows(out, x []float32, n int, w *Mat, lo, hi int) {
	rb := RowBytes(w.DType, w.Cols)
	for r := lo; r < hi; r++ {
		dotQRow(w.DType, w.Q[r*rb:(r+1)*rb], x, w.Cols, n, out[r:], w.Rows)
	}
}

// dotQRow is one row of whole blocks of type qt dotted with n rows of x
// (xstride apart) into out[t*ostride]: each block widened once, dotted with
// every token's slice, the blocks' sums added in order.
func dotQRow(qt DType, row []byte, x []float32, xstride, n int, out []float32, ostride int) {
	var buf [QKK]float32
	bs := BlockSize(qt)
	bb := RowBytes(qt, bs)
	for t := range n {
		out[t*ostride] = 0
	}
	for b := 0; b < len(row)/bb; b++ {
		blk := buf[:bs]
		Dequantize(qt, blk, row[b*bb:(b+1)*bb])
		for t := range n {
			out[t*ostride] += Dot(blk, x[t*xstride+b*bs:t*xstride+(b+1)*bs])
		}
	}
}

// F32ToF16 rounds a float32 to the nearest IEEE half (ties to even), as
// ggml's conversion does: overflow gives infinity, NaN stays NaN, tiny
// values become subnormals or zero.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff > 0x7f800000: // NaN
		return sign | 0x7e00
	case exp >= 0x1f: // overflow or infinity
		return sign | 0x7c00
	case exp <= 0: // subnormal half or zero
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // may carry into the exponent, up to infinity: still right
	}
	return sign | uint16(h)
}

// dotQRef is a row of whole blocks of type qt dotted with x as dotQuantRows
// computes it (dotQRow for one token).
func dotQRef(qt DType, row []byte, x []float32) float32 {
	var s [1]float32
	dotQRow(qt, row, x, 0, 1, s[:], 0)
	return s[0]
}

// dot4x4Q computes out[r*4+t] = dot(row r, x row t) for four rows of blocks
// blocks of type qt (w[r*wstride:], strides in bytes) and four x rows
// (x[t*xstride:]): the type's AVX-512 kernel, prefetching as dot4x4BF16
// does, or dotQRef.
func dot4x4Q(qt DType, out *[16]float32, w []byte, wstride int, x []float32, xstride, blocks int, pf uintptr, lines int) {
	_ = w[3*wstride+blocks*RowBytes(qt, BlockSize(qt))-1]
	_ = x[3*xstride+blocks*BlockSize(qt)-1]
	if !hasAVX512 {
		for i := range out {
			r, t := i/4, i%4
			out[i] = dotQRef(qt, w[r*wstride:r*wstride+blocks*RowBytes(qt, BlockSize(qt))], x[t*xstride:])
		}
		return
	}
	switch qt {
	case Q8_0:
		dot4x4Q8_0AVX512(&w[0], wstride, &x[0], xstride, blocks, out, pf, lines)
	case Q4_K:
		dot4x4Q4_KAVX512(&w[0], wstride, &x[0], xstride, blocks, out, pf, lines)
	case Q6_K:
		dot4x4Q6_KAVX512(&w[0], wstride, &x[0], xstride, blocks, out, pf, lines)
	}
}

// dot4x1Q is dot4x4Q for one x row, summing as it does for its first
// token.
func dot4x1Q(qt DType, out *[4]float32, w []byte, wstride int, x []float32, blocks int, pf uintptr, lines int) {
	_ = w[3*wstride+blocks*RowBytes(qt, BlockSize(qt))-1]
	_ = x[blocks*BlockSize(qt)-1]
	if !hasAVX512 {
		for r := range out {
			out[r] = dotQRef(qt, w[r*wstride:r*wstride+blocks*RowBytes(qt, BlockSize(qt))], x)
		}
		return
	}
	var sums [16]float32
	switch qt {
	case Q8_0:
		dot4x1Q8_0AVX512(&w[0], wstride, &x[0], blocks, &sums, pf, lines)
	case Q4_K:
		dot4x1Q4_KAVX512(&w[0], wstride, &x[0], blocks, &sums, pf, lines)
	case Q6_K:
		dot4x1Q6_KAVX512(&w[0], wstride, &x[0], blocks, &sums, pf, lines)
	}
	for r := range out {
		out[r] = sums[r*4]
	}
}
