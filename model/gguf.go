package model

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/medgemma/medgemma/gguf"
	"github.com/medgemma/medgemma/kernels"
)

// A GGUF text model as llama.cpp's converter writes Gemma 3: architecture
// "gemma3", metadata under gemma3.*, tensors named token_embd,
// blk.N.attn_q ... post_ffw_norm, output_norm, RMSNorm weights stored as
// 1 + w. The binder asks for transformers' names; ggufTextNames maps them.

// ggufLayerNames maps the part of a decoder layer's transformers name after
// "layers.N." to llama.cpp's after "blk.N.".
var ggufLayerNames = map[string]string{
	"input_layernorm.weight":            "attn_norm.weight",
	"self_attn.q_proj.weight":           "attn_q.weight",
	"self_attn.k_proj.weight":           "attn_k.weight",
	"self_attn.v_proj.weight":           "attn_v.weight",
	"self_attn.o_proj.weight":           "attn_output.weight",
	"self_attn.q_norm.weight":           "attn_q_norm.weight",
	"self_attn.k_norm.weight":           "attn_k_norm.weight",
	"post_attention_layernorm.weight":   "post_attention_norm.weight",
	"pre_feedforward_layernorm.weight":  "ffn_norm.weight",
	"mlp.gate_proj.weight":              "ffn_gate.weight",
	"mlp.up_proj.weight":                "ffn_up.weight",
	"mlp.down_proj.weight":              "ffn_down.weight",
	"post_feedforward_layernorm.weight": "post_ffw_norm.weight",
}

// ggufTextName is llama.cpp's name for a transformers name of the text
// model ("" for none).
func ggufTextName(name string) string {
	switch name {
	case "embed_tokens.weight":
		return "token_embd.weight"
	case "norm.weight":
		return "output_norm.weight"
	case "lm_head.weight":
		return "output.weight"
	}
	rest, ok := strings.CutPrefix(name, "layers.")
	if !ok {
		return ""
	}
	i, suffix, ok := strings.Cut(rest, ".")
	if n, err := strconv.Atoi(i); !ok || err != nil || n < 0 {
		return ""
	}
	if g, ok := ggufLayerNames[suffix]; ok {
		return "blk." + i + "." + g
	}
	return ""
}

// ggufSource is a GGUF text model.
type ggufSource struct{ text *gguf.File }

func (s ggufSource) tensor(name string) *stored {
	g := ggufTextName(name)
	t, ok := s.text.Tensor(g)
	if g == "" || !ok {
		return nil
	}
	shape := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		shape[len(shape)-1-i] = d
	}
	st := &stored{name: g, shape: shape, kind: t.Type.String(), data: t.Data}
	st.dtype, st.known = t.Type.DType()
	return st
}

func (ggufSource) normPlusOne() bool { return true }
func (s ggufSource) Close() error    { return s.text.Close() }

func (ggufSource) prefixes(string) []string { return []string{""} }

func (ggufSource) fileName(name string) string {
	if g := ggufTextName(name); g != "" {
		return g
	}
	return name
}

// IsGGUF reports whether path names a GGUF file (by its extension).
func IsGGUF(path string) bool { return strings.EqualFold(filepath.Ext(path), ".gguf") }

// loadGGUF loads a GGUF text model.
func loadGGUF(ctx context.Context, path string, opts LoadOptions) (*Model, error) {
	f, err := gguf.OpenContext(ctx, path, opts.Resident)
	if err != nil {
		return nil, err
	}
	cfg, err := ConfigFromGGUF(f)
	if err == nil {
		err = ctx.Err()
	}
	var m *Model
	if err == nil {
		m, err = bind(filepath.Dir(path), cfg, ggufSource{f})
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.Path = path
	m.pool = kernels.NewPool(opts.Threads)
	return m, nil
}

// ConfigFromGGUF is the configuration of a GGUF Gemma 3 text model, from
// its metadata as llama.cpp reads it. What the file does not say, llama.cpp
// fixes for Gemma 3, and so does this: sliding layers use RoPE base 10,000
// (unless gemma3.rope.freq_base_swa says otherwise), every sixth layer is
// global (unless gemma3.attention.sliding_window_pattern, a bool per layer,
// says which are sliding), queries are scaled by head_dim^-0.5 except in the 27B model (62
// layers), whose query_pre_attn_scalar is hidden_size / heads.
func ConfigFromGGUF(f *gguf.File) (*Config, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return nil, err
	}
	if arch != "gemma3" {
		return nil, fmt.Errorf("general.architecture is %q; only gemma3 is supported", arch)
	}
	var firstErr error
	num := func(key string) int {
		v, err := f.Int("gemma3."+key, 1, math.MaxInt32)
		if firstErr == nil {
			firstErr = err
		}
		return int(v)
	}
	float := func(key string, def float64) float64 {
		if _, ok := f.Get("gemma3." + key); !ok && def != 0 {
			return def
		}
		v, err := f.Float("gemma3." + key)
		if firstErr == nil {
			firstErr = err
		}
		return v
	}
	t := TextConfig{
		HiddenSize:            num("embedding_length"),
		IntermediateSize:      num("feed_forward_length"),
		NumHiddenLayers:       num("block_count"),
		NumAttentionHeads:     num("attention.head_count"),
		NumKeyValueHeads:      num("attention.head_count_kv"),
		HeadDim:               num("attention.key_length"),
		SlidingWindow:         num("attention.sliding_window"),
		MaxPositionEmbeddings: num("context_length"),
		RMSNormEps:            float("attention.layer_norm_rms_epsilon", 0),
		RopeTheta:             float("rope.freq_base", 1e6),
		RopeLocalBaseFreq:     float("rope.freq_base_swa", 1e4),
		RopeScalingFactor:     1,
		HiddenActivation:      "gelu_pytorch_tanh",
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if v, ok := f.Get("gemma3.attention.value_length"); ok {
		if n, _ := f.Int("gemma3.attention.value_length", 1, math.MaxInt32); n != int64(t.HeadDim) {
			return nil, fmt.Errorf("gemma3.attention.value_length %v differs from key_length %d", v.V, t.HeadDim)
		}
	}
	if typ, err := f.String("gemma3.rope.scaling.type"); err == nil && typ == "linear" {
		if t.RopeScalingFactor, err = f.Float("gemma3.rope.scaling.factor"); err != nil {
			return nil, err
		}
		if t.RopeScalingFactor <= 0 {
			return nil, fmt.Errorf("gemma3.rope.scaling.factor %v", t.RopeScalingFactor)
		}
	} else if err == nil && typ != "none" {
		return nil, fmt.Errorf("gemma3.rope.scaling.type %q is not supported (linear)", typ)
	}
	t.QueryPreAttnScalar = float64(t.HeadDim)
	if t.NumHiddenLayers == 62 {
		t.QueryPreAttnScalar = float64(t.HiddenSize / t.NumAttentionHeads)
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || len(emb.Dims) != 2 {
		return nil, fmt.Errorf("tensor token_embd.weight is missing or not a matrix")
	}
	t.VocabSize = emb.Dims[1]
	c := &Config{ModelType: "gemma3_text", Architecture: "Gemma3ForCausalLM"}
	if err := checkCaps(&t, c); err != nil {
		return nil, err
	}
	swa, err := slidingLayers(f, t.NumHiddenLayers)
	if err != nil {
		return nil, err
	}
	for _, sliding := range swa {
		if sliding {
			t.LayerTypes = append(t.LayerTypes, SlidingAttention)
		} else {
			t.LayerTypes = append(t.LayerTypes, FullAttention)
		}
	}
	c.Text = t
	if eos, err := f.Int("tokenizer.ggml.eos_token_id", 0, int64(t.VocabSize-1)); err == nil {
		c.EOSTokenIDs = append(c.EOSTokenIDs, int(eos))
	}
	if toks, err := f.Strings("tokenizer.ggml.tokens"); err == nil {
		for id, s := range toks {
			if s == "<end_of_turn>" && id < t.VocabSize {
				c.EOSTokenIDs = append(c.EOSTokenIDs, id)
			}
		}
	}
	return c, c.Validate()
}

// GGUFTextName is llama.cpp's name for a tensor of a transformers
// checkpoint's text model (ok false for the vision tower, the projector and
// anything else).
func GGUFTextName(name string) (string, bool) {
	for _, h := range lmHeadNames {
		if name == h {
			return "output.weight", true
		}
	}
	for _, p := range textPrefixes {
		if rest, ok := strings.CutPrefix(name, p); ok {
			if g := ggufTextName(rest); g != "" && rest != "lm_head.weight" {
				return g, true
			}
		}
	}
	return "", false
}

// IsNorm reports whether a transformers tensor name is a Gemma RMSNorm
// weight (stored in GGUF as 1 + w).
func IsNorm(name string) bool {
	return strings.HasSuffix(name, "norm.weight") && !strings.Contains(name, "vision")
}

// slidingLayers says which of n layers use sliding-window attention.
func slidingLayers(f *gguf.File, n int) ([]bool, error) {
	const key = "gemma3.attention.sliding_window_pattern"
	if _, ok := f.Get(key); ok {
		v, _ := f.Get(key)
		swa, ok := v.V.([]bool)
		if !ok || len(swa) != n {
			return nil, fmt.Errorf("%s must be %d bools (one per layer), not %s of %d", key, n, v.Type, v.Len())
		}
		return swa, nil
	}
	swa := make([]bool, n)
	for i := range swa {
		swa[i] = (i+1)%6 != 0
	}
	return swa, nil
}

// GGUFMetadata is the gemma3 architecture's metadata of a text model as
// llama.cpp's converter writes it (general.*, gemma3.*; not the
// tokenizer's), refusing what ConfigFromGGUF could not read back.
func GGUFMetadata(cfg *Config, name string) ([]gguf.KV, error) {
	t := cfg.Text
	kv := func(k string, v gguf.Value) gguf.KV { return gguf.KV{Key: k, Value: v} }
	u32 := func(v int) gguf.Value { return gguf.Of(uint32(v)) }
	f32 := func(v float64) gguf.Value { return gguf.Of(float32(v)) }
	meta := []gguf.KV{
		kv("general.architecture", gguf.Of("gemma3")),
		kv("general.name", gguf.Of(name)),
		kv("gemma3.context_length", u32(t.MaxPositionEmbeddings)),
		kv("gemma3.embedding_length", u32(t.HiddenSize)),
		kv("gemma3.block_count", u32(t.NumHiddenLayers)),
		kv("gemma3.feed_forward_length", u32(t.IntermediateSize)),
		kv("gemma3.attention.head_count", u32(t.NumAttentionHeads)),
		kv("gemma3.attention.head_count_kv", u32(t.NumKeyValueHeads)),
		kv("gemma3.attention.key_length", u32(t.HeadDim)),
		kv("gemma3.attention.value_length", u32(t.HeadDim)),
		kv("gemma3.attention.layer_norm_rms_epsilon", f32(t.RMSNormEps)),
		kv("gemma3.rope.freq_base", f32(t.RopeTheta)),
		kv("gemma3.attention.sliding_window", u32(t.SlidingWindow)),
	}
	if t.RopeLocalBaseFreq != 1e4 {
		meta = append(meta, kv("gemma3.rope.freq_base_swa", f32(t.RopeLocalBaseFreq)))
	}
	if t.RopeScalingFactor != 1 {
		meta = append(meta, kv("gemma3.rope.scaling.type", gguf.Of("linear")), kv("gemma3.rope.scaling.factor", f32(t.RopeScalingFactor)))
	}
	// What ConfigFromGGUF cannot recover is refused rather than lost.
	want := float64(t.HeadDim)
	if t.NumHiddenLayers == 62 {
		want = float64(t.HiddenSize / t.NumAttentionHeads)
	}
	if t.QueryPreAttnScalar != want {
		return nil, fmt.Errorf("query_pre_attn_scalar %v cannot be said in GGUF (llama.cpp takes %v for this model)", t.QueryPreAttnScalar, want)
	}
	// llama.cpp makes every sixth layer global; another pattern (the tiny
	// test checkpoints') is written as the per-layer key other
	// architectures use, which ConfigFromGGUF reads.
	swa := make([]bool, len(t.LayerTypes))
	sixth := true
	for i, lt := range t.LayerTypes {
		swa[i] = lt == SlidingAttention
		sixth = sixth && swa[i] == ((i+1)%6 != 0)
	}
	if !sixth {
		meta = append(meta, kv("gemma3.attention.sliding_window_pattern", gguf.ArrayOf(swa)))
	}
	return meta, nil
}
