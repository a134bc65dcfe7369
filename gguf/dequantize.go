package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/medgemma/medgemma/kernels"
)

// Float32s returns the tensor's weights widened to float32 (a copy),
// dequantized exactly as ggml does.
func (t *Tensor) Float32s() ([]float32, error) {
	n := t.Elements()
	want, err := t.Type.RowBytes(n)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if len(t.Data) != want {
		return nil, fmt.Errorf("tensor %s: %d bytes of data, %s %v needs %d", t.Name, len(t.Data), t.Type, t.Dims, want)
	}
	out := make([]float32, n)
	Dequantize(t.Type, out, t.Data)
	return out, nil
}

// Dequantize widens len(dst) weights of type t stored in src (which holds
// them whole: see Type.RowBytes) into dst.
func Dequantize(t Type, dst []float32, src []byte) {
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = kernels.F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = kernels.BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case Q8_0:
		kernels.DequantizeQ8_0(dst, src)
	case Q4_0:
		kernels.DequantizeQ4_0(dst, src)
	case Q4_K:
		kernels.DequantizeQ4_K(dst, src)
	case Q5_K:
		kernels.DequantizeQ5_K(dst, src)
	case Q6_K:
		kernels.DequantizeQ6_K(dst, src)
	default:
		panic(fmt.Sprintf("gguf.Dequantize: %s", t))
	}
}
