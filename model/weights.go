package model

import (
	"fmt"
	"strings"

	"github.com/medgemma/medgemma/internal/mapped"
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

// stored is a tensor as a checkpoint holds it, its shape in transformers'
// order (rows first).
type stored struct {
	name  string // its name in the file, for errors
	shape []int
	dtype kernels.DType
	known bool   // dtype is one the kernels take
	kind  string // the stored type's name, for errors
	data  []byte
}

// source is where a checkpoint's tensors come from: safetensors files named
// as transformers names them, or GGUF files named as llama.cpp does.
type source interface {
	// tensor returns the tensor of a transformers name, nil if absent.
	tensor(name string) *stored
	// normPlusOne reports whether RMSNorm weights are stored as the factor
	// 1 + w (llama.cpp's converter adds the one) rather than as w.
	normPlusOne() bool
	// fileName is what the tensor of a transformers name is called in the
	// file, for errors.
	fileName(name string) string
	// prefixes are the prefixes the names of a part (text, vision,
	// projector) may take.
	prefixes(part string) []string
	Close() error
}

// safetensorsSource is a Hugging Face checkpoint.
type safetensorsSource struct{ ckpt *safetensors.Checkpoint }

func (s safetensorsSource) tensor(name string) *stored {
	t := s.ckpt.Tensor(name)
	if t == nil {
		return nil
	}
	st := &stored{name: name, shape: t.Shape, kind: string(t.DType), data: t.Data, known: true}
	switch t.DType {
	case safetensors.BF16:
		st.dtype = kernels.BF16
	case safetensors.F16:
		st.dtype = kernels.F16
	case safetensors.F32:
		st.dtype = kernels.F32
	default:
		st.known = false
	}
	return st
}

func (safetensorsSource) normPlusOne() bool           { return false }
func (safetensorsSource) fileName(name string) string { return name }

func (safetensorsSource) prefixes(part string) []string {
	switch part {
	case "vision":
		return visionPrefixes
	case "projector":
		return projectorPrefixes
	}
	return textPrefixes
}
func (s safetensorsSource) Close() error { return s.ckpt.Close() }

// binder looks up tensors by logical name and checks their shapes.
type binder struct {
	src      source
	prefixes []string
	used     map[string]bool
}

func (b *binder) find(name string) (*stored, string, error) {
	var tried []string
	for _, p := range b.prefixes {
		full := p + name
		if t := b.src.tensor(full); t != nil {
			b.used[full] = true
			return t, t.name, nil
		}
		tried = append(tried, b.src.fileName(full))
	}
	return nil, "", fmt.Errorf("tensor %s is missing (looked for %s)", name, strings.Join(tried, ", "))
}

func checkShape(full string, t *stored, want ...int) error {
	ok := len(t.shape) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = t.shape[i] == want[i]
	}
	if !ok {
		return fmt.Errorf("tensor %s has shape %v, want %v", full, t.shape, want)
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
	if !t.known {
		return kernels.Mat{}, fmt.Errorf("tensor %s: dtype %s is not supported (BF16, F16, F32, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)", full, t.kind)
	}
	cols := 1
	for _, d := range shape[1:] {
		cols *= d
	}
	m := kernels.Mat{Rows: shape[0], Cols: cols, DType: t.dtype}
	if cols%kernels.BlockSize(t.dtype) != 0 || len(t.data) != shape[0]*kernels.RowBytes(t.dtype, cols) {
		return kernels.Mat{}, fmt.Errorf("tensor %s: %d bytes for %s %v", full, len(t.data), t.dtype, shape)
	}
	switch t.dtype {
	case kernels.BF16, kernels.F16:
		m.Raw, err = mapped.View[uint16](t.data)
	case kernels.F32:
		m.F32, err = mapped.View[float32](t.data)
	default:
		m.Q = t.data
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
	if !t.known || len(t.data) != kernels.RowBytes(t.dtype, n) || n%kernels.BlockSize(t.dtype) != 0 {
		return nil, fmt.Errorf("tensor %s: %d bytes of %s for %d weights", full, len(t.data), t.kind, n)
	}
	v := make([]float32, n)
	kernels.Dequantize(t.dtype, v, t.data)
	return v, nil
}

// norm binds the weight of a Gemma RMSNorm as the factor it multiplies by,
// 1 + w: computed here from a transformers checkpoint, stored so in GGUF.
func (b *binder) norm(name string, n int) ([]float32, error) {
	v, err := b.vec(name, n)
	if err != nil || b.src.normPlusOne() {
		return v, err
	}
	for i, w := range v {
		v[i] = 1 + w
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

func (e *errs) norm(b *binder, name string, n int) []float32 {
	if e.err != nil {
		return nil
	}
	v, err := b.norm(name, n)
	e.err = err
	return v
}
