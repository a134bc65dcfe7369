package model

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/medgemma/medgemma/gguf"
	"github.com/medgemma/medgemma/kernels"
	"github.com/medgemma/medgemma/safetensors"
)

// Shapes are the configurations of the published MedGemma checkpoints, as
// their config.json files state them (omitted fields take transformers'
// defaults, as for the real files). They give benchmarks and memory estimates
// the real sizes without the real weights.
var Shapes = map[string]string{
	"medgemma-4b-it": `{"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
		"boi_token_index": 255999, "eoi_token_index": 256000, "eos_token_id": [1, 106], "image_token_index": 262144,
		"mm_tokens_per_image": 256,
		"text_config": {"model_type": "gemma3_text", "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 34,
			"rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
		"vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
			"num_attention_heads": 16, "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": false}}`,
	"medgemma-27b-text-it": `{"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
		"eos_token_id": [1, 106], "head_dim": 128, "hidden_size": 5376, "intermediate_size": 21504,
		"num_attention_heads": 32, "num_hidden_layers": 62, "num_key_value_heads": 16, "query_pre_attn_scalar": 168,
		"rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024, "vocab_size": 262144}`,
	"medgemma-27b-it": `{"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
		"boi_token_index": 255999, "eoi_token_index": 256000, "eos_token_id": [1, 106], "image_token_index": 262144,
		"mm_tokens_per_image": 256,
		"text_config": {"model_type": "gemma3_text", "head_dim": 128, "hidden_size": 5376, "intermediate_size": 21504,
			"num_attention_heads": 32, "num_hidden_layers": 62, "num_key_value_heads": 16, "query_pre_attn_scalar": 168,
			"rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
		"vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
			"num_attention_heads": 16, "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": false}}`,
}

// ShapeNames lists the known shapes.
func ShapeNames() []string {
	var names []string
	for n := range Shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TensorSpec is one weight of a checkpoint: its name in the current
// transformers layout and its shape.
type TensorSpec struct {
	Name  string
	Shape []int
	Part  string // "text", "vision" or "projector"
}

// Elements is the product of the shape.
func (t TensorSpec) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Tensors lists every weight a configuration needs (tied LM head: none
// stored), named as transformers >= 4.52 saves them.
func (c *Config) Tensors() []TensorSpec {
	t := c.Text
	text := "model."
	if c.Vision != nil {
		text = "model.language_model."
	}
	var out []TensorSpec
	add := func(part, name string, shape ...int) { out = append(out, TensorSpec{name, shape, part}) }
	h, qDim, kvDim := t.HiddenSize, t.NumAttentionHeads*t.HeadDim, t.NumKeyValueHeads*t.HeadDim
	add("text", text+"embed_tokens.weight", t.VocabSize, h)
	for i := range t.NumHiddenLayers {
		p := fmt.Sprintf("%slayers.%d.", text, i)
		add("text", p+"input_layernorm.weight", h)
		add("text", p+"self_attn.q_proj.weight", qDim, h)
		add("text", p+"self_attn.k_proj.weight", kvDim, h)
		add("text", p+"self_attn.v_proj.weight", kvDim, h)
		add("text", p+"self_attn.q_norm.weight", t.HeadDim)
		add("text", p+"self_attn.k_norm.weight", t.HeadDim)
		add("text", p+"self_attn.o_proj.weight", h, qDim)
		add("text", p+"post_attention_layernorm.weight", h)
		add("text", p+"pre_feedforward_layernorm.weight", h)
		add("text", p+"mlp.gate_proj.weight", t.IntermediateSize, h)
		add("text", p+"mlp.up_proj.weight", t.IntermediateSize, h)
		add("text", p+"mlp.down_proj.weight", h, t.IntermediateSize)
		add("text", p+"post_feedforward_layernorm.weight", h)
	}
	add("text", text+"norm.weight", h)
	if v := c.Vision; v != nil {
		vp := "model.vision_tower.vision_model."
		vh, ps := v.HiddenSize, v.PatchSize
		side := v.ImageSize / ps
		add("vision", vp+"embeddings.patch_embedding.weight", vh, v.NumChannels, ps, ps)
		add("vision", vp+"embeddings.patch_embedding.bias", vh)
		add("vision", vp+"embeddings.position_embedding.weight", side*side, vh)
		for i := range v.NumHiddenLayers {
			p := fmt.Sprintf("%sencoder.layers.%d.", vp, i)
			for _, n := range []string{"layer_norm1", "layer_norm2"} {
				add("vision", p+n+".weight", vh)
				add("vision", p+n+".bias", vh)
			}
			for _, n := range []string{"q_proj", "k_proj", "v_proj", "out_proj"} {
				add("vision", p+"self_attn."+n+".weight", vh, vh)
				add("vision", p+"self_attn."+n+".bias", vh)
			}
			add("vision", p+"mlp.fc1.weight", v.IntermediateSize, vh)
			add("vision", p+"mlp.fc1.bias", v.IntermediateSize)
			add("vision", p+"mlp.fc2.weight", vh, v.IntermediateSize)
			add("vision", p+"mlp.fc2.bias", vh)
		}
		add("vision", vp+"post_layernorm.weight", vh)
		add("vision", vp+"post_layernorm.bias", vh)
		add("projector", "model.multi_modal_projector.mm_soft_emb_norm.weight", vh)
		add("projector", "model.multi_modal_projector.mm_input_projection_weight", vh, t.HiddenSize)
	}
	return out
}

// Params counts the parameters of each part.
func (c *Config) Params() map[string]int64 {
	p := map[string]int64{}
	for _, t := range c.Tensors() {
		p[t.Part] += t.Elements()
	}
	return p
}

// KVCacheBytes is the float32 KV cache of one sequence of ctx tokens: every
// position for full-attention layers, the window for sliding ones.
// KVBytesPerToken is the KV memory of one position in every layer (key and
// value, float32): what a token costs while it is inside the sliding
// window; past it only the full-attention layers keep it
// (KVBytesPerTokenPastWindow).
func (c *Config) KVBytesPerToken() int64 {
	t := c.Text
	return int64(t.NumHiddenLayers) * int64(2*t.NumKeyValueHeads*t.HeadDim*4)
}

// KVBytesPerTokenPastWindow is the KV memory of a position the sliding
// layers no longer keep.
func (c *Config) KVBytesPerTokenPastWindow() int64 {
	t := c.Text
	full := 0
	for i := range t.NumHiddenLayers {
		if !t.Sliding(i) {
			full++
		}
	}
	return int64(full) * int64(2*t.NumKeyValueHeads*t.HeadDim*4)
}

func (c *Config) KVCacheBytes(ctx int) int64 {
	t := c.Text
	per := int64(2 * t.NumKeyValueHeads * t.HeadDim * 4)
	var n int64
	for i := range t.NumHiddenLayers {
		if t.Sliding(i) {
			n += per * int64(min(ctx, t.SlidingWindow))
		} else {
			n += per * int64(ctx)
		}
	}
	return n
}

// WriteRandom writes config.json and model.safetensors for configJSON into
// dir, with random bf16 weights of the right scale (so activations stay
// finite): what benchmarks run on in place of the real weights.
func WriteRandom(dir string, configJSON []byte, seed uint64) error {
	cfg, err := ParseConfig(configJSON)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), configJSON, 0o644); err != nil {
		return err
	}
	var ts []safetensors.WriteTensor
	for i, spec := range cfg.Tensors() {
		state := seed*0x9E3779B97F4A7C15 + uint64(i+1)
		scale := float32(0.02)
		if len(spec.Shape) == 1 {
			scale = 0.1
		}
		ts = append(ts, safetensors.WriteTensor{Name: spec.Name, DType: safetensors.BF16, Shape: spec.Shape,
			Fill: func(w io.Writer) error { return fillRandomBF16(w, spec.Elements(), state, scale) }})
	}
	return safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"})
}

// fillRandomBF16 writes n bf16 values uniform in [-scale, scale).
func fillRandomBF16(w io.Writer, n int64, state uint64, scale float32) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)/2))
		for i := range k {
			state ^= state << 13
			state ^= state >> 7
			state ^= state << 17
			f := (float32(state>>40)/float32(1<<24)*2 - 1) * scale
			binary.LittleEndian.PutUint16(buf[2*i:], uint16(math.Float32bits(f)>>16))
		}
		if _, err := w.Write(buf[:2*k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// WriteRandomGGUF writes the text model of configJSON as a GGUF file at
// path, its matrices in typ with random blocks of the right scale (norms in
// float32): what benchmarks of quantized weights run on.
func WriteRandomGGUF(path string, configJSON []byte, typ gguf.Type, seed uint64) error {
	return WriteRandomGGUFTypes(path, configJSON, func(string) gguf.Type { return typ }, seed)
}

// WriteRandomGGUFTypes is WriteRandomGGUF with each matrix in the type
// typeOf gives for its (llama.cpp) name: a mix such as llama-quantize's
// Q4_K_M.
func WriteRandomGGUFTypes(path string, configJSON []byte, typeOf func(name string) gguf.Type, seed uint64) error {
	cfg, err := ParseConfig(configJSON)
	if err != nil {
		return err
	}
	meta, err := GGUFMetadata(cfg, "random")
	if err != nil {
		return err
	}
	var specs []gguf.TensorSpec
	for _, spec := range cfg.Tensors() {
		g, ok := GGUFTextName(spec.Name)
		if !ok {
			continue
		}
		s := gguf.TensorSpec{Name: g, Type: gguf.F32, Dims: []int{int(spec.Shape[len(spec.Shape)-1])}}
		if len(spec.Shape) == 2 {
			typ := typeOf(g)
			if dt, ok := typ.DType(); !ok || !dt.Quantized() && dt != kernels.BF16 {
				return fmt.Errorf("random weights in %s are not supported", typ)
			}
			s.Type, s.Dims = typ, []int{int(spec.Shape[1]), int(spec.Shape[0])}
			if s.Dims[0]%typ.BlockSize() != 0 {
				return fmt.Errorf("tensor %s: rows of %d are not whole %s blocks", spec.Name, s.Dims[0], typ)
			}
		}
		specs = append(specs, s)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := gguf.NewWriter(f, meta, specs)
	if err != nil {
		return err
	}
	for i, s := range specs {
		state := seed*0x9E3779B97F4A7C15 + uint64(i+1)
		dt, _ := s.Type.DType()
		switch {
		case s.Type == gguf.F32: // a norm's factor 1 + w
			err = w.WriteTensorFunc(func(w io.Writer) error { return fillRandomNorm(w, s.Dims[0], state) })
		case dt == kernels.BF16:
			err = w.WriteTensorFunc(func(w io.Writer) error { return fillRandomBF16(w, int64(s.Dims[0]*s.Dims[1]), state, 0.02) })
		default:
			err = w.WriteTensorFunc(func(w io.Writer) error { return fillRandomBlocks(w, dt, s.Dims[0]*s.Dims[1], state) })
		}
		if err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Close()
}

func fillRandomNorm(w io.Writer, n int, state uint64) error {
	buf := make([]byte, 4*n)
	for i := range n {
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(1+(float32(state>>40)/float32(1<<24)*2-1)*0.1))
	}
	_, err := w.Write(buf)
	return err
}

// fillRandomBlocks writes n weights of a block type: random bits, then each
// block's float16 scales set so that weights stay within about +-0.02
// (bf16 weights come from fillRandomBF16).
func fillRandomBlocks(w io.Writer, dt kernels.DType, n int, state uint64) error {
	bs := kernels.RowBytes(dt, kernels.BlockSize(dt))
	per := max(1, (1<<20)/bs)
	buf := make([]byte, per*bs)
	for blocks := n / kernels.BlockSize(dt); blocks > 0; blocks -= per {
		k := min(per, blocks)
		b := buf[:k*bs]
		for i := 0; i+8 <= len(b); i += 8 {
			state ^= state << 13
			state ^= state >> 7
			state ^= state << 17
			binary.LittleEndian.PutUint64(b[i:], state)
		}
		for j := range k {
			blk := b[j*bs : (j+1)*bs]
			switch dt {
			case kernels.Q8_0:
				binary.LittleEndian.PutUint16(blk, kernels.F32ToF16(0.02/127))
			case kernels.Q4_0:
				binary.LittleEndian.PutUint16(blk, kernels.F32ToF16(0.02/8))
			case kernels.Q4_K, kernels.Q5_K:
				binary.LittleEndian.PutUint16(blk, kernels.F32ToF16(0.02/(63*16)))
				binary.LittleEndian.PutUint16(blk[2:], kernels.F32ToF16(0.02/63))
			case kernels.Q6_K:
				binary.LittleEndian.PutUint16(blk[bs-2:], kernels.F32ToF16(0.02/(127*32)))
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// DecodeBytes is what a decode step reads of the weights: every decoder
// matrix and the LM head, in their stored formats.
func (m *Model) DecodeBytes() int64 {
	size := func(w *kernels.Mat) int64 { return int64(w.Rows) * int64(kernels.RowBytes(w.DType, w.Cols)) }
	t := m.text
	n := size(&t.lmHead)
	for i := range t.layers {
		L := &t.layers[i]
		for _, w := range []*kernels.Mat{&L.qProj, &L.kProj, &L.vProj, &L.oProj, &L.gateProj, &L.upProj, &L.downProj} {
			n += size(w)
		}
	}
	return n
}
