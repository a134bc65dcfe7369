package gguf

import (
	"fmt"

	"github.com/medgemma/medgemma/kernels"
)

var dtypes = map[Type]kernels.DType{
	F32: kernels.F32, F16: kernels.F16, BF16: kernels.BF16, Q8_0: kernels.Q8_0,
	Q4_0: kernels.Q4_0, Q4_K: kernels.Q4_K, Q5_K: kernels.Q5_K, Q6_K: kernels.Q6_K,
}

// DType is the kernels' dtype of a tensor type (ok false for a type not read
// here).
func (t Type) DType() (kernels.DType, bool) {
	d, ok := dtypes[t]
	return d, ok
}

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
	d, _ := t.Type.DType()
	kernels.Dequantize(d, out, t.Data)
	return out, nil
}
