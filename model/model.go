// Package model loads MedGemma checkpoints as Hugging Face publishes them and
// computes what transformers computes: the SigLIP vision tower, the
// multimodal projector and the Gemma 3 decoder with its KV cache.
//
// Weights stay memory-mapped in their stored dtype; activations are float32.
// Names follow transformers' (q_proj, post_feedforward_layernorm,
// mm_soft_emb_norm) so the code reads next to the reference implementation.
package model

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/medgemma/medgemma/kernels"
	"github.com/medgemma/medgemma/safetensors"
)

// Model is a loaded checkpoint.
type Model struct {
	Config *Config
	Dir    string // the checkpoint's directory
	Path   string // the GGUF file, for a GGUF model

	src       source
	pool      kernels.Pool
	kvType    kernels.DType // how KV pools store keys and values
	text      *textModel
	vision    *visionModel // nil for text-only checkpoints
	projector *projector
}

// LoadOptions control loading.
type LoadOptions struct {
	// Resident reads the weights into memory instead of mapping them (see
	// safetensors.OpenDirResident).
	Resident bool
	// KVType is how the KV cache stores keys and values: F32 (the
	// default, exact), F16 (half the memory) or Q8_0 (about a quarter:
	// blocks of 32 with a float16 scale, as llama.cpp's q8_0 cache).
	KVType kernels.DType
	// Threads the model's kernels use; 0 means GOMAXPROCS.
	Threads int
	// MMProj is the mmproj GGUF file (vision tower and projector) of a
	// GGUF text model.
	MMProj string
}

// Load reads config.json and binds the safetensors weights of a checkpoint
// directory, memory-mapped; or, for a path ending in .gguf, a GGUF text
// model (configuration from its metadata). Missing tensors and wrong shapes are errors naming
// the tensor.
func Load(dir string) (*Model, error) { return LoadWith(dir, LoadOptions{}) }

// LoadWith is Load with options.
func LoadWith(dir string, opts LoadOptions) (*Model, error) {
	return LoadContext(context.Background(), dir, opts)
}

// LoadContext is LoadWith that a cancelled ctx stops: between the reads of
// resident weights, and before binding.
func LoadContext(ctx context.Context, dir string, opts LoadOptions) (*Model, error) {
	if opts.Threads < 0 {
		return nil, fmt.Errorf("threads must be 0 (GOMAXPROCS) or more, got %d", opts.Threads)
	}
	if t := opts.KVType; t != kernels.F32 && t != kernels.F16 && t != kernels.Q8_0 {
		return nil, fmt.Errorf("KV cache type %s: want F32, F16 or Q8_0", t)
	}
	if IsGGUF(dir) {
		return loadGGUF(ctx, dir, opts)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	var ckpt *safetensors.Checkpoint
	if opts.Resident {
		ckpt, err = safetensors.OpenDirResidentContext(ctx, dir)
	} else {
		ckpt, err = safetensors.OpenDir(dir)
	}
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		ckpt.Close()
		return nil, err
	}
	m, err := bind(dir, cfg, safetensorsSource{ckpt})
	if err != nil {
		ckpt.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	m.pool, m.kvType = kernels.NewPool(opts.Threads), opts.KVType
	return m, nil
}

// ParseKVType reads a KV cache type as the command line spells it (f32,
// f16, q8_0; llama.cpp's --cache-type names).
func ParseKVType(s string) (kernels.DType, error) {
	switch strings.ToLower(s) {
	case "", "f32":
		return kernels.F32, nil
	case "f16":
		return kernels.F16, nil
	case "q8_0":
		return kernels.Q8_0, nil
	}
	return 0, fmt.Errorf("KV cache type %q: want f32, f16 or q8_0", s)
}

// KVType is how the model's KV pools store keys and values.
func (m *Model) KVType() kernels.DType { return m.kvType }

func bind(dir string, cfg *Config, src source) (*Model, error) {
	used := map[string]bool{}
	m := &Model{Config: cfg, Dir: dir, src: src}
	var err error
	if m.text, err = loadText(&binder{src: src, prefixes: src.prefixes("text"), used: used}, cfg.Text); err != nil {
		return nil, err
	}
	if cfg.Vision != nil {
		if m.vision, err = loadVision(&binder{src: src, prefixes: src.prefixes("vision"), used: used}, *cfg.Vision); err != nil {
			return nil, err
		}
		if m.projector, err = loadProjector(&binder{src: src, prefixes: src.prefixes("projector"), used: used}, cfg); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Close releases the mapped weights; the model must not be used afterwards.
func (m *Model) Close() error { return m.src.Close() }

// HasVision reports whether the checkpoint takes images.
func (m *Model) HasVision() bool { return m.vision != nil }

// Threads is the number of threads the model's kernels use.
func (m *Model) Threads() int { return m.pool.Threads() }

// EncodeImage runs one preprocessed image, pixel values [3, S, S], through the
// vision tower and the projector, returning mm_tokens_per_image rows of
// text hidden_size: the embeddings that replace the image's soft tokens. With
// visionOut set it also receives the vision tower's output. A cancelled ctx
// stops it before the next layer, with ctx's error.
func (m *Model) EncodeImage(ctx context.Context, pixels []float32, visionOut func([]float32)) ([]float32, error) {
	if m.vision == nil {
		return nil, errors.New("this checkpoint has no vision tower (text only)")
	}
	v, err := m.vision.forward(ctx, m.pool, pixels)
	if err != nil {
		return nil, err
	}
	if visionOut != nil {
		visionOut(v)
	}
	return m.projector.forward(v), nil
}
