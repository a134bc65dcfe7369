package gguf

import (
	"fmt"

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
	d, _ := t.Type.DType()
	kernels.Dequantize(d, out, t.Data)
	return out, nil
}
