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

// ggufVisionNames maps the part of a SigLIP encoder layer's transformers
// name after "encoder.layers.N." to llama.cpp's mmproj name after
// "v.blk.N.".
var ggufVisionNames = map[string]string{
	"layer_norm1.weight": "ln1.weight", "layer_norm1.bias": "ln1.bias",
	"layer_norm2.weight": "ln2.weight", "layer_norm2.bias": "ln2.bias",
	"self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
	"self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
	"self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
	"self_attn.out_proj.weight": "attn_out.weight", "self_attn.out_proj.bias": "attn_out.bias",
	"mlp.fc1.weight": "ffn_up.weight", "mlp.fc1.bias": "ffn_up.bias",
	"mlp.fc2.weight": "ffn_down.weight", "mlp.fc2.bias": "ffn_down.bias",
}

// ggufMMProjName is llama.cpp's mmproj name for a transformers name of the
// vision tower (without its prefix) or the projector ("" for none).
func ggufMMProjName(name string) string {
	switch name {
	case "embeddings.patch_embedding.weight":
		return "v.patch_embd.weight"
	case "embeddings.patch_embedding.bias":
		return "v.patch_embd.bias"
	case "embeddings.position_embedding.weight":
		return "v.position_embd.weight"
	case "post_layernorm.weight":
		return "v.post_ln.weight"
	case "post_layernorm.bias":
		return "v.post_ln.bias"
	case "mm_soft_emb_norm.weight":
		return "mm.soft_emb_norm.weight"
	case "mm_input_projection_weight":
		return "mm.input_projection.weight"
	}
	rest, ok := strings.CutPrefix(name, "encoder.layers.")
	if !ok {
		return ""
	}
	i, suffix, ok := strings.Cut(rest, ".")
	if n, err := strconv.Atoi(i); !ok || err != nil || n < 0 {
		return ""
	}
	if g, ok := ggufVisionNames[suffix]; ok {
		return "v.blk." + i + "." + g
	}
	return ""
}

// ggufSource is a GGUF text model and, for images, its mmproj file (the
// vision tower and projector, llama.cpp's "clip" architecture).
type ggufSource struct{ text, mmproj *gguf.File }

func (s ggufSource) tensor(name string) *stored {
	f, g := s.text, ggufTextName(name)
	if g == "" && s.mmproj != nil {
		f, g = s.mmproj, ggufMMProjName(name)
	}
	if g == "" {
		return nil
	}
	t, ok := f.Tensor(g)
	if !ok {
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

func (s ggufSource) Close() error {
	err := s.text.Close()
	if s.mmproj != nil {
		if merr := s.mmproj.Close(); err == nil {
			err = merr
		}
	}
	return err
}

func (ggufSource) prefixes(string) []string { return []string{""} }

func (ggufSource) fileName(name string) string {
	if g := ggufTextName(name); g != "" {
		return g
	}
	if g := ggufMMProjName(name); g != "" {
		return g
	}
	return name
}

// GGUF is the model's GGUF text file (its metadata: the tokenizer's
// vocabulary...), nil for a safetensors checkpoint. It closes with the model.
func (m *Model) GGUF() *gguf.File {
	if s, ok := m.src.(ggufSource); ok {
		return s.text
	}
	return nil
}

// IsGGUF reports whether path names a GGUF file (by its extension).
func IsGGUF(path string) bool { return strings.EqualFold(filepath.Ext(path), ".gguf") }

// loadGGUF loads a GGUF text model, with the vision tower and projector of
// opts.MMProj when given.
func loadGGUF(ctx context.Context, path string, opts LoadOptions) (*Model, error) {
	f, err := gguf.OpenContext(ctx, path, opts.Resident)
	if err != nil {
		return nil, err
	}
	src := ggufSource{text: f}
	cfg, err := ConfigFromGGUF(f)
	if err == nil && opts.MMProj != "" {
		if src.mmproj, err = gguf.OpenContext(ctx, opts.MMProj, opts.Resident); err == nil {
			if err = visionFromGGUF(src.mmproj, cfg); err != nil {
				err = fmt.Errorf("%s: %w", opts.MMProj, err)
			}
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	var m *Model
	if err == nil {
		m, err = bind(filepath.Dir(path), cfg, src)
	}
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.Path = path
	m.pool, m.kvType = kernels.NewPool(opts.Threads), opts.KVType
	return m, nil
}

// ConfigFromGGUF is the configuration of a GGUF Gemma 3 text model, from
// its metadata as llama.cpp reads it. What the file does not say, llama.cpp
// fixes for Gemma 3, and so does this: sliding layers use RoPE base 10,000
// (unless gemma3.rope.freq_base_swa says otherwise), every sixth layer is
// global (unless gemma3.attention.sliding_window_pattern, a bool per layer,
// says which are sliding), queries are scaled by head_dim^-0.5 except in the
// 27B model (62 layers), whose query_pre_attn_scalar is hidden_size / heads
// (unless gemma3.attention.query_pre_attn_scalar says otherwise).
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
	t.QueryPreAttnScalar = llamaQueryScalar(&t)
	if _, ok := f.Get("gemma3.attention.query_pre_attn_scalar"); ok {
		if t.QueryPreAttnScalar, err = f.Float("gemma3.attention.query_pre_attn_scalar"); err != nil {
			return nil, err
		}
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

// llamaQueryScalar is the query_pre_attn_scalar llama.cpp takes for Gemma
// 3: head_dim, except hidden_size / heads for the 62-layer 27B model.
func llamaQueryScalar(t *TextConfig) float64 {
	if t.NumHiddenLayers == 62 {
		return float64(t.HiddenSize / t.NumAttentionHeads)
	}
	return float64(t.HeadDim)
}

// slidingLayers says which of n layers use sliding-window attention.
func slidingLayers(f *gguf.File, n int) ([]bool, error) {
	const key = "gemma3.attention.sliding_window_pattern"
	if v, ok := f.Get(key); ok {
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
	// llama.cpp derives the query scale from the shape; another one (the
	// tiny test checkpoints') is written under a key of this project's,
	// which ConfigFromGGUF reads.
	if t.QueryPreAttnScalar != llamaQueryScalar(&t) {
		meta = append(meta, kv("gemma3.attention.query_pre_attn_scalar", f32(t.QueryPreAttnScalar)))
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

// visionFromGGUF adds the vision tower of an mmproj file (llama.cpp's clip
// architecture, projector type gemma3) to a text model's config: the
// SigLIP sizes from clip.vision.*, and the tokens per image from the
// projector's pooling (clip.vision.projector.scale_factor, 4 when absent
// as llama.cpp takes it: 896 px, patches of 14, pooled 4x4 to 256).
func visionFromGGUF(f *gguf.File, c *Config) error {
	if arch, err := f.String("general.architecture"); err != nil || arch != "clip" {
		return fmt.Errorf("general.architecture is %q, not an mmproj file (clip)", arch)
	}
	if pt, err := f.String("clip.projector_type"); err != nil || pt != "gemma3" {
		return fmt.Errorf("clip.projector_type is %q; only gemma3 is supported", pt)
	}
	var firstErr error
	num := func(key string) int {
		v, err := f.Int("clip.vision."+key, 1, math.MaxInt32)
		if firstErr == nil {
			firstErr = err
		}
		return int(v)
	}
	v := &VisionConfig{
		HiddenSize: num("embedding_length"), IntermediateSize: num("feed_forward_length"),
		NumHiddenLayers: num("block_count"), NumAttentionHeads: num("attention.head_count"),
		ImageSize: num("image_size"), PatchSize: num("patch_size"), NumChannels: 3,
		HiddenAct: "gelu_pytorch_tanh",
	}
	scale := 4
	if _, ok := f.Get("clip.vision.projector.scale_factor"); ok {
		scale = num("projector.scale_factor")
	}
	if firstErr != nil {
		return firstErr
	}
	eps, err := f.Float("clip.vision.attention.layer_norm_epsilon")
	if err != nil {
		return err
	}
	v.LayerNormEps = eps
	if dim, err := f.Int("clip.vision.projection_dim", 1, math.MaxInt32); err == nil && int(dim) != c.Text.HiddenSize {
		return fmt.Errorf("clip.vision.projection_dim %d is not the text model's hidden size %d", dim, c.Text.HiddenSize)
	}
	side := v.ImageSize / max(v.PatchSize, 1) / scale
	c.Vision, c.MMTokensPerImage = v, side*side
	c.ModelType, c.Architecture = "gemma3", "Gemma3ForConditionalGeneration"
	c.BOITokenIndex, c.EOITokenIndex, c.ImageTokenIndex = 255999, 256000, 262144
	return c.Validate()
}

// GGUFMMProjName is llama.cpp's mmproj name for a tensor of a transformers
// checkpoint's vision tower or projector (ok false for anything else).
func GGUFMMProjName(name string) (string, bool) {
	for _, prefixes := range [][]string{visionPrefixes, projectorPrefixes} {
		for _, p := range prefixes {
			if rest, ok := strings.CutPrefix(name, p); ok {
				if g := ggufMMProjName(rest); g != "" {
					return g, true
				}
			}
		}
	}
	return "", false
}
