package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Layer types of the Gemma 3 decoder.
const (
	SlidingAttention = "sliding_attention"
	FullAttention    = "full_attention"
)

// TextConfig is the Gemma 3 decoder's configuration (Gemma3TextConfig), with
// transformers' defaults for every field a published config.json omits.
type TextConfig struct {
	VocabSize             int
	HiddenSize            int
	IntermediateSize      int
	NumHiddenLayers       int
	NumAttentionHeads     int
	NumKeyValueHeads      int
	HeadDim               int
	RMSNormEps            float64
	QueryPreAttnScalar    float64
	SlidingWindow         int
	LayerTypes            []string // one per layer: SlidingAttention or FullAttention
	RopeTheta             float64  // full-attention layers
	RopeScalingFactor     float64  // linear scaling on full-attention layers; 1 for none
	RopeLocalBaseFreq     float64  // sliding layers (no scaling)
	MaxPositionEmbeddings int
	HiddenActivation      string
	FinalLogitSoftcapping float64 // 0: none
	AttnLogitSoftcapping  float64 // 0: none
}

// VisionConfig is the SigLIP vision tower's configuration.
type VisionConfig struct {
	HiddenSize        int
	IntermediateSize  int
	NumHiddenLayers   int
	NumAttentionHeads int
	NumChannels       int
	ImageSize         int
	PatchSize         int
	LayerNormEps      float64
	HiddenAct         string
}

// Config is a MedGemma checkpoint's config.json: Gemma3ForConditionalGeneration
// (model_type "gemma3", text and vision) or Gemma3ForCausalLM ("gemma3_text").
type Config struct {
	ModelType    string
	Architecture string
	Text         TextConfig
	Vision       *VisionConfig // nil for text-only checkpoints
	// Multimodal only.
	MMTokensPerImage int
	BOITokenIndex    int
	EOITokenIndex    int
	ImageTokenIndex  int
	EOSTokenIDs      []int
}

// LoadConfig reads DIR/config.json.
func LoadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

type ropeJSON struct {
	RopeType string   `json:"rope_type"`
	Type     string   `json:"type"`
	Factor   *float64 `json:"factor"`
	Theta    *float64 `json:"rope_theta"`
}

type textJSON struct {
	ModelType             string          `json:"model_type"`
	VocabSize             *int            `json:"vocab_size"`
	HiddenSize            *int            `json:"hidden_size"`
	IntermediateSize      *int            `json:"intermediate_size"`
	NumHiddenLayers       *int            `json:"num_hidden_layers"`
	NumAttentionHeads     *int            `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	QueryPreAttnScalar    *float64        `json:"query_pre_attn_scalar"`
	SlidingWindow         *int            `json:"sliding_window"`
	SlidingWindowPattern  *int            `json:"sliding_window_pattern"`
	LayerTypes            []string        `json:"layer_types"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeLocalBaseFreq     *float64        `json:"rope_local_base_freq"`
	RopeScaling           *ropeJSON       `json:"rope_scaling"`
	RopeParameters        json.RawMessage `json:"rope_parameters"`
	MaxPositionEmbeddings *int            `json:"max_position_embeddings"`
	HiddenActivation      *string         `json:"hidden_activation"`
	FinalLogitSoftcapping *float64        `json:"final_logit_softcapping"`
	AttnLogitSoftcapping  *float64        `json:"attn_logit_softcapping"`
	EOSTokenID            json.RawMessage `json:"eos_token_id"`
}

type visionJSON struct {
	HiddenSize        *int     `json:"hidden_size"`
	IntermediateSize  *int     `json:"intermediate_size"`
	NumHiddenLayers   *int     `json:"num_hidden_layers"`
	NumAttentionHeads *int     `json:"num_attention_heads"`
	NumChannels       *int     `json:"num_channels"`
	ImageSize         *int     `json:"image_size"`
	PatchSize         *int     `json:"patch_size"`
	LayerNormEps      *float64 `json:"layer_norm_eps"`
	HiddenAct         *string  `json:"hidden_act"`
}

type configJSON struct {
	textJSON
	Architectures    []string    `json:"architectures"`
	TextConfig       *textJSON   `json:"text_config"`
	VisionConfig     *visionJSON `json:"vision_config"`
	MMTokensPerImage *int        `json:"mm_tokens_per_image"`
	BOITokenIndex    *int        `json:"boi_token_index"`
	EOITokenIndex    *int        `json:"eoi_token_index"`
	ImageTokenIndex  *int        `json:"image_token_index"`
}

func pick[T any](v *T, def T) T {
	if v != nil {
		return *v
	}
	return def
}

// ParseConfig reads a config.json. Defaults are transformers' (Gemma3Config,
// Gemma3TextConfig, SiglipVisionConfig).
func ParseConfig(data []byte) (*Config, error) {
	var j configJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, err
	}
	c := &Config{ModelType: j.ModelType}
	if len(j.Architectures) > 0 {
		c.Architecture = j.Architectures[0]
	}
	text := &j.textJSON
	switch j.ModelType {
	case "gemma3":
		if j.TextConfig == nil {
			return nil, errors.New(`model_type "gemma3" without text_config`)
		}
		text = j.TextConfig
		v := j.VisionConfig
		if v == nil {
			return nil, errors.New(`model_type "gemma3" without vision_config`)
		}
		c.Vision = &VisionConfig{
			HiddenSize: pick(v.HiddenSize, 768), IntermediateSize: pick(v.IntermediateSize, 3072),
			NumHiddenLayers: pick(v.NumHiddenLayers, 12), NumAttentionHeads: pick(v.NumAttentionHeads, 12),
			NumChannels: pick(v.NumChannels, 3), ImageSize: pick(v.ImageSize, 224), PatchSize: pick(v.PatchSize, 16),
			LayerNormEps: pick(v.LayerNormEps, 1e-6), HiddenAct: pick(v.HiddenAct, "gelu_pytorch_tanh"),
		}
		c.MMTokensPerImage = pick(j.MMTokensPerImage, 256)
		c.BOITokenIndex = pick(j.BOITokenIndex, 255999)
		c.EOITokenIndex = pick(j.EOITokenIndex, 256000)
		c.ImageTokenIndex = pick(j.ImageTokenIndex, 262144)
	case "gemma3_text":
	default:
		return nil, fmt.Errorf("model_type %q is not supported (gemma3, gemma3_text)", j.ModelType)
	}
	if eos, err := parseIDs(j.EOSTokenID); err != nil {
		return nil, fmt.Errorf("eos_token_id: %w", err)
	} else if eos != nil {
		c.EOSTokenIDs = eos
	} else if eos, _ := parseIDs(text.EOSTokenID); eos != nil {
		c.EOSTokenIDs = eos
	} else {
		c.EOSTokenIDs = []int{1, 106}
	}
	t := TextConfig{
		VocabSize: pick(text.VocabSize, 262208), HiddenSize: pick(text.HiddenSize, 2304),
		IntermediateSize: pick(text.IntermediateSize, 9216), NumHiddenLayers: pick(text.NumHiddenLayers, 26),
		NumAttentionHeads: pick(text.NumAttentionHeads, 8), NumKeyValueHeads: pick(text.NumKeyValueHeads, 4),
		HeadDim: pick(text.HeadDim, 256), RMSNormEps: pick(text.RMSNormEps, 1e-6),
		QueryPreAttnScalar: pick(text.QueryPreAttnScalar, 256), SlidingWindow: pick(text.SlidingWindow, 4096),
		RopeTheta: pick(text.RopeTheta, 1e6), RopeLocalBaseFreq: pick(text.RopeLocalBaseFreq, 1e4), RopeScalingFactor: 1,
		MaxPositionEmbeddings: pick(text.MaxPositionEmbeddings, 131072), HiddenActivation: pick(text.HiddenActivation, "gelu_pytorch_tanh"),
		FinalLogitSoftcapping: pick(text.FinalLogitSoftcapping, 0), AttnLogitSoftcapping: pick(text.AttnLogitSoftcapping, 0),
	}
	if rs := text.RopeScaling; rs != nil {
		if err := applyRopeJSON(&t, rs, true); err != nil {
			return nil, fmt.Errorf("rope_scaling: %w", err)
		}
	}
	if len(text.RopeParameters) > 0 && string(text.RopeParameters) != "null" {
		if err := parseRopeParameters(&t, text.RopeParameters); err != nil {
			return nil, fmt.Errorf("rope_parameters: %w", err)
		}
	}
	// Sizes are capped before anything is sized by them (the layer types
	// below, then the binder, caches and scratch buffers): a config.json is
	// input like any other.
	if err := checkCaps(&t, c); err != nil {
		return nil, err
	}
	if len(text.LayerTypes) > 0 {
		t.LayerTypes = text.LayerTypes
	} else {
		pattern := pick(text.SlidingWindowPattern, 6)
		if pattern < 1 {
			return nil, fmt.Errorf("sliding_window_pattern %d", pattern)
		}
		for i := range t.NumHiddenLayers {
			if (i+1)%pattern == 0 {
				t.LayerTypes = append(t.LayerTypes, FullAttention)
			} else {
				t.LayerTypes = append(t.LayerTypes, SlidingAttention)
			}
		}
	}
	c.Text = t
	return c, c.Validate()
}

// applyRopeJSON reads one rope description. global says it applies to the
// full-attention layers.
func applyRopeJSON(t *TextConfig, r *ropeJSON, global bool) error {
	typ := r.RopeType
	if typ == "" {
		typ = r.Type
	}
	switch typ {
	case "linear":
		if r.Factor == nil || *r.Factor <= 0 {
			return errors.New("linear scaling needs a positive factor")
		}
		if !global {
			return errors.New("linear scaling on sliding layers is not supported")
		}
		t.RopeScalingFactor = *r.Factor
	case "default", "":
	default:
		return fmt.Errorf("rope type %q is not supported (default, linear)", typ)
	}
	if r.Theta != nil {
		if global {
			t.RopeTheta = *r.Theta
		} else {
			t.RopeLocalBaseFreq = *r.Theta
		}
	}
	return nil
}

// parseRopeParameters reads transformers 5's rope_parameters: one description
// for all layers, or one per layer type.
func parseRopeParameters(t *TextConfig, raw json.RawMessage) error {
	var perType map[string]json.RawMessage
	if err := json.Unmarshal(raw, &perType); err != nil {
		return err
	}
	if _, ok := perType[FullAttention]; !ok {
		var r ropeJSON
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		return applyRopeJSON(t, &r, true)
	}
	for typ, body := range perType {
		var r ropeJSON
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("%s: %w", typ, err)
		}
		if err := applyRopeJSON(t, &r, typ == FullAttention); err != nil {
			return fmt.Errorf("%s: %w", typ, err)
		}
	}
	return nil
}

func parseIDs(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, err
	}
	return many, nil
}

// Caps on a config's sizes, far above every Gemma 3 model (27B: 62 layers,
// hidden 5376, MLP 21504, 32 heads of 128, vocabulary 262,208, 131,072
// positions; SigLIP 27 layers of 1152 at 896x896, patch 14) and far below
// what would exhaust memory or overflow the products of sizes. The tensors a
// checkpoint holds are checked against the config afterwards.
var (
	textCaps = map[string]int{
		"vocab_size": 1 << 22, "hidden_size": 1 << 16, "intermediate_size": 1 << 18,
		"num_hidden_layers": 1 << 10, "num_attention_heads": 1 << 10, "num_key_value_heads": 1 << 10,
		"head_dim": 1 << 12, "sliding_window": 1 << 24, "max_position_embeddings": 1 << 24,
	}
	visionCaps = map[string]int{
		"hidden_size": 1 << 14, "intermediate_size": 1 << 16, "num_hidden_layers": 1 << 10,
		"num_attention_heads": 1 << 10, "image_size": 1 << 13, "patch_size": 1 << 10,
	}
	maxMMTokensPerImage = 1 << 16
)

// checkCaps refuses sizes outside 1..cap.
func checkCaps(t *TextConfig, c *Config) error {
	check := func(part, name string, v, limit int) error {
		if v <= 0 || v > limit {
			return fmt.Errorf("%s%s %d is outside 1..%d", part, name, v, limit)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab_size", t.VocabSize}, {"hidden_size", t.HiddenSize}, {"intermediate_size", t.IntermediateSize},
		{"num_hidden_layers", t.NumHiddenLayers}, {"num_attention_heads", t.NumAttentionHeads},
		{"num_key_value_heads", t.NumKeyValueHeads}, {"head_dim", t.HeadDim}, {"sliding_window", t.SlidingWindow},
		{"max_position_embeddings", t.MaxPositionEmbeddings}} {
		if err := check("", f.name, f.v, textCaps[f.name]); err != nil {
			return err
		}
	}
	if v := c.Vision; v != nil {
		for _, f := range []struct {
			name string
			v    int
		}{{"hidden_size", v.HiddenSize}, {"intermediate_size", v.IntermediateSize}, {"num_hidden_layers", v.NumHiddenLayers},
			{"num_attention_heads", v.NumAttentionHeads}, {"image_size", v.ImageSize}, {"patch_size", v.PatchSize}} {
			if err := check("vision_config ", f.name, f.v, visionCaps[f.name]); err != nil {
				return err
			}
		}
		if err := check("", "mm_tokens_per_image", c.MMTokensPerImage, maxMMTokensPerImage); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks that the sizes are within their caps and consistent.
func (c *Config) Validate() error {
	t := &c.Text
	if err := checkCaps(t, c); err != nil {
		return err
	}
	switch {
	case t.NumAttentionHeads%t.NumKeyValueHeads != 0:
		return fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", t.NumAttentionHeads, t.NumKeyValueHeads)
	case len(t.LayerTypes) != t.NumHiddenLayers:
		return fmt.Errorf("layer_types has %d entries for %d layers", len(t.LayerTypes), t.NumHiddenLayers)
	case t.HiddenActivation != "gelu_pytorch_tanh":
		return fmt.Errorf("hidden_activation %q is not supported (gelu_pytorch_tanh)", t.HiddenActivation)
	case t.QueryPreAttnScalar <= 0 || t.RMSNormEps <= 0 || t.RopeTheta <= 0 || t.RopeLocalBaseFreq <= 0:
		return errors.New("query_pre_attn_scalar, rms_norm_eps and the rope bases must be positive")
	case t.HeadDim%2 != 0:
		return fmt.Errorf("head_dim %d must be even for rotary embeddings", t.HeadDim)
	}
	for i, lt := range t.LayerTypes {
		if lt != SlidingAttention && lt != FullAttention {
			return fmt.Errorf("layer_types[%d] is %q", i, lt)
		}
	}
	if v := c.Vision; v != nil {
		switch {
		case v.HiddenSize%v.NumAttentionHeads != 0:
			return fmt.Errorf("vision hidden_size %d is not a multiple of num_attention_heads %d", v.HiddenSize, v.NumAttentionHeads)
		case v.ImageSize%v.PatchSize != 0:
			return fmt.Errorf("vision image_size %d is not a multiple of patch_size %d", v.ImageSize, v.PatchSize)
		case v.NumChannels != 3:
			return fmt.Errorf("vision num_channels %d (want 3)", v.NumChannels)
		case v.HiddenAct != "gelu_pytorch_tanh":
			return fmt.Errorf("vision hidden_act %q is not supported", v.HiddenAct)
		}
		side := v.ImageSize / v.PatchSize
		tps := intSqrt(c.MMTokensPerImage)
		if tps*tps != c.MMTokensPerImage || tps == 0 || side%tps != 0 {
			return fmt.Errorf("mm_tokens_per_image %d does not pool a %dx%d patch grid", c.MMTokensPerImage, side, side)
		}
	}
	return nil
}

func intSqrt(n int) int {
	r := 0
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

// Sliding reports whether layer i uses sliding-window attention.
func (t *TextConfig) Sliding(i int) bool { return t.LayerTypes[i] == SlidingAttention }
