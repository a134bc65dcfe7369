package model

import (
	"fmt"
	"strings"

	"github.com/medgemma/medgemma/kernels"
	"github.com/medgemma/medgemma/safetensors"
)

// Tensor names differ between the published layouts:
//
//	language_model.model.*  vision_tower.vision_model.*  multi_modal_projector.*   (transformers 4.5x)
//	model.language_model.*  model.vision_tower.vision_model.*  model.multi_modal_projector.*  lm_head.*  (transformers >= 4.52)
//	model.*  lm_head.*      (Gemma3ForCausalLM, text only)
//
// and some writers drop the "vision_model." level. The binder looks a logical
// name up under each prefix of its part in turn.
var (
	textPrefixes      = []string{"language_model.model.", "model.language_model.", "model.", "language_model."}
	lmHeadNames       = []string{"lm_head.weight", "language_model.lm_head.weight", "model.lm_head.weight"}
	visionPrefixes    = []string{"vision_tower.vision_model.", "model.vision_tower.vision_model.", "vision_tower.", "model.vision_tower."}
	projectorPrefixes = []string{"multi_modal_projector.", "model.multi_modal_projector."}
)

// binder looks up tensors by logical name and checks their shapes.
type binder struct {
	ckpt     *safetensors.Checkpoint
	prefixes []string
	used     map[string]bool
}

func (b *binder) find(name string) (*safetensors.Tensor, string, error) {
	var tried []string
	for _, p := range b.prefixes {
		full := p + name
		if t := b.ckpt.Tensor(full); t != nil {
			b.used[full] = true
			return t, full, nil
		}
		tried = append(tried, full)
	}
	return nil, "", fmt.Errorf("tensor %s is missing (looked for %s)", name, strings.Join(tried, ", "))
}

func checkShape(full string, t *safetensors.Tensor, want ...int) error {
	ok := len(t.Shape) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = t.Shape[i] == want[i]
	}
	if !ok {
		return fmt.Errorf("tensor %s has shape %v, want %v", full, t.Shape, want)
	}
	return nil
}

// mat binds a weight matrix of rows x cols without copying it. Convolution
// weights (more dimensions) are read as rows x (product of the rest).
func (b *binder) mat(name string, shape ...int) (kernels.Mat, error) {
	t, full, err := b.find(name)
	if err != nil {
		return kernels.Mat{}, err
	}
	if err := checkShape(full, t, shape...); err != nil {
		return kernels.Mat{}, err
	}
	cols := 1
	for _, d := range shape[1:] {
		cols *= d
	}
	m := kernels.Mat{Rows: shape[0], Cols: cols}
	switch t.DType {
	case safetensors.BF16:
		m.DType = kernels.BF16
		m.Raw, err = t.BF16()
	case safetensors.F16:
		m.DType = kernels.F16
		m.Raw, err = t.F16()
	case safetensors.F32:
		m.DType = kernels.F32
		m.F32, err = t.F32()
	default:
		return kernels.Mat{}, fmt.Errorf("tensor %s: dtype %s is not supported (BF16, F16, F32)", full, t.DType)
	}
	if err != nil {
		return kernels.Mat{}, fmt.Errorf("tensor %s: %w", full, err)
	}
	return m, nil
}

// vec binds a small vector (norm weights, biases) as a float32 copy.
func (b *binder) vec(name string, n int) ([]float32, error) {
	t, full, err := b.find(name)
	if err != nil {
		return nil, err
	}
	if err := checkShape(full, t, n); err != nil {
		return nil, err
	}
	v, err := t.Float32s()
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", full, err)
	}
	return v, nil
}

// errs collects the first error of a sequence of binds.
type errs struct{ err error }

func (e *errs) mat(b *binder, name string, shape ...int) kernels.Mat {
	if e.err != nil {
		return kernels.Mat{}
	}
	m, err := b.mat(name, shape...)
	e.err = err
	return m
}

func (e *errs) vec(b *binder, name string, n int) []float32 {
	if e.err != nil {
		return nil
	}
	v, err := b.vec(name, n)
	e.err = err
	return v
}
