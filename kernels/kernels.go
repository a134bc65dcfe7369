// Package kernels holds the numerical building blocks of the model: matrix
// products over weights in their stored dtype (bf16, f16, f32, or ggml's
// quantized blocks) with float32 accumulation, normalizations, activations, rotary embeddings and softmax.
//
// Every kernel has a plain-Go reference (the *Ref functions) that defines
// what it computes; faster versions are tested against it on the same inputs.
package kernels

import (
	"math"
)

// DType is the stored element type of a weight matrix.
type DType uint8

// Weight dtypes: float types, and ggml's block formats (quant.go).
const (
	F32 DType = iota
	BF16
	F16
	Q8_0
	Q4_0
	Q4_K
	Q5_K
	Q6_K
)

var dtypeNames = [...]string{"F32", "BF16", "F16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"}

func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return "unknown dtype"
}

// Quantized reports whether d is a block format (the weights in Mat.Q).
func (d DType) Quantized() bool { return d >= Q8_0 && d <= Q6_K }

// Mat is a weight matrix of Rows x Cols, row-major, in its stored dtype. Raw
// holds BF16 or F16 bits; F32 holds float32 weights; Q holds the blocks of a
// quantized type, each row RowBytes(DType, Cols) long. It aliases the
// memory-mapped checkpoint: nothing is converted at load.
type Mat struct {
	Rows, Cols int
	DType      DType
	Raw        []uint16
	F32        []float32
	Q          []byte
}

// BF16ToF32 widens a bfloat16 (exact).
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F16ToF32 widens an IEEE half (exact).
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0:
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Row widens row r of the matrix into dst (len Cols).
func (m *Mat) Row(dst []float32, r int) {
	dst = dst[:m.Cols]
	switch m.DType {
	case F32:
		copy(dst, m.F32[r*m.Cols:(r+1)*m.Cols])
	case BF16:
		src := m.Raw[r*m.Cols : (r+1)*m.Cols]
		for i, h := range src {
			dst[i] = BF16ToF32(h)
		}
	case F16:
		src := m.Raw[r*m.Cols : (r+1)*m.Cols]
		for i, h := range src {
			dst[i] = F16ToF32(h)
		}
	default:
		rb := RowBytes(m.DType, m.Cols)
		Dequantize(m.DType, dst, m.Q[r*rb:(r+1)*rb])
	}
}

// MatMulRef computes out[t*Rows+r] = sum_c x[t*Cols+c] * W[r,c] for n rows
// of x: y = x W^T, as torch.nn.Linear. Reference implementation.
func MatMulRef(out, x []float32, n int, w *Mat) {
	row := make([]float32, w.Cols)
	for r := range w.Rows {
		w.Row(row, r)
		for t := range n {
			xt := x[t*w.Cols : (t+1)*w.Cols]
			var s float32
			for c, v := range row {
				s += xt[c] * v
			}
			out[t*w.Rows+r] = s
		}
	}
}

// DotRef is the float32 dot product of a and b.
func DotRef(a, b []float32) float32 {
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// RMSNorm normalizes each of the n rows of x (len dim) into out as Gemma
// does, in float32: x / sqrt(mean(x^2) + eps) * scale, where scale is
// Gemma's 1 + w (the model adds the one when it loads w; GGUF files store
// the sum).
func RMSNorm(out, x, scale []float32, dim int, eps float32) {
	for off := 0; off < len(x); off += dim {
		xs := x[off : off+dim]
		var ss float32
		for _, v := range xs {
			ss += v * v
		}
		inv := float32(1 / math.Sqrt(float64(ss/float32(dim)+eps)))
		o := out[off : off+dim]
		for i, v := range xs {
			o[i] = v * inv * scale[i]
		}
	}
}

// LayerNorm normalizes each row of x (len dim) with bias, as torch.nn.LayerNorm
// (biased variance).
func LayerNorm(out, x, w, b []float32, dim int, eps float32) {
	for off := 0; off < len(x); off += dim {
		xs := x[off : off+dim]
		var mean float32
		for _, v := range xs {
			mean += v
		}
		mean /= float32(dim)
		var vr float32
		for _, v := range xs {
			d := v - mean
			vr += d * d
		}
		vr /= float32(dim)
		inv := float32(1 / math.Sqrt(float64(vr+eps)))
		o := out[off : off+dim]
		for i, v := range xs {
			o[i] = (v-mean)*inv*w[i] + b[i]
		}
	}
}

// GELUTanh is the tanh approximation of GELU (gelu_pytorch_tanh).
func GELUTanh(x float32) float32 {
	const c = 0.7978845608028654 // sqrt(2/pi)
	v := float64(x)
	return float32(0.5 * v * (1 + math.Tanh(c*(v+0.044715*v*v*v))))
}

// GELUTanhSlice applies GELUTanh to every element of x in place; with
// AVX-512 16 at a time with tanh from Exp32's algorithm (within about 1e-6
// relative of GELUTanh, which computes tanh in float64).
func GELUTanhSlice(x []float32) {
	head := 0
	if hasAVX512 {
		head = len(x) &^ 15
	}
	if head > 0 {
		geluTanhAVX512(&x[0], head)
	}
	for i := head; i < len(x); i++ {
		x[i] = GELUTanh(x[i])
	}
}

// Softmax replaces x by its softmax, in float32 with the maximum subtracted.
// Entries of -Inf become 0.
func Softmax(x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	var s float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		s += e
	}
	inv := 1 / s
	for i := range x {
		x[i] *= inv
	}
}

// LogSumExp of x, in float64.
func LogSumExp(x []float32) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}
