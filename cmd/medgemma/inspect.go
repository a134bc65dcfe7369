package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/medgemma/medgemma/gguf"
	"github.com/medgemma/medgemma/model"
	"github.com/medgemma/medgemma/safetensors"
)

const inspectUsage = `Usage:
  medgemma inspect [--context N] [--json] MODEL

Describes a checkpoint directory, a GGUF file (or a published shape: %s): architecture,
layer pattern, parameters per part, dtypes, and the memory its weights and its
KV cache at a given context need.

Flags:
`

type inspectResult struct {
	Model        string              `json:"model"`
	Architecture string              `json:"architecture"`
	ModelType    string              `json:"model_type"`
	Text         model.TextConfig    `json:"text_config"`
	Vision       *model.VisionConfig `json:"vision_config,omitempty"`
	LayerPattern string              `json:"layer_pattern"`
	Params       map[string]int64    `json:"parameters"`
	DTypes       map[string]int      `json:"tensor_dtypes"`
	WeightBytes  int64               `json:"weight_bytes"`
	Context      int                 `json:"context_tokens"`
	KVCacheBytes int64               `json:"kv_cache_bytes"`
	// KVBytesPerToken is every layer's; past the sliding window only the
	// full-attention layers keep a token (KVBytesPerTokenPastWindow).
	KVBytesPerToken           int64 `json:"kv_bytes_per_token"`
	KVBytesPerTokenPastWindow int64 `json:"kv_bytes_per_token_past_window"`
	ImageTokens               int   `json:"image_tokens,omitempty"`
}

func runInspect(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("inspect", fmt.Sprintf(inspectUsage, strings.Join(model.ShapeNames(), ", ")), stderr)
	ctx := fs.Int("context", 8192, "context length for the KV-cache estimate")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give one MODEL (a checkpoint directory or %s)", strings.Join(model.ShapeNames(), ", "))
	}
	if *ctx <= 0 {
		return usagef("--context must be positive")
	}
	r := inspectResult{Model: pos[0], Context: *ctx, DTypes: map[string]int{}}
	var cfg *model.Config
	if js, ok := model.Shapes[pos[0]]; ok {
		if cfg, err = model.ParseConfig([]byte(js)); err != nil {
			return err
		}
		for range cfg.Tensors() {
			r.DTypes["BF16"]++
		}
		for _, n := range cfg.Params() {
			r.WeightBytes += 2 * n
		}
	} else if model.IsGGUF(pos[0]) {
		f, err := gguf.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if cfg, err = model.ConfigFromGGUF(f); err != nil {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		for _, t := range f.Tensors {
			r.DTypes[t.Type.String()]++
			r.WeightBytes += int64(len(t.Data))
		}
	} else {
		if cfg, err = model.LoadConfig(pos[0]); err != nil {
			return err
		}
		ck, err := safetensors.OpenDir(pos[0])
		if err != nil {
			return err
		}
		for _, name := range ck.Names() {
			t := ck.Tensor(name)
			r.DTypes[string(t.DType)]++
			r.WeightBytes += int64(len(t.Data))
		}
		ck.Close()
	}
	if *ctx > cfg.Text.MaxPositionEmbeddings {
		return usagef("--context %d is over the model's %d positions (max_position_embeddings)", *ctx, cfg.Text.MaxPositionEmbeddings)
	}
	r.Architecture, r.ModelType, r.Text, r.Vision = cfg.Architecture, cfg.ModelType, cfg.Text, cfg.Vision
	r.Params = cfg.Params()
	r.KVCacheBytes = cfg.KVCacheBytes(*ctx)
	r.KVBytesPerToken, r.KVBytesPerTokenPastWindow = cfg.KVBytesPerToken(), cfg.KVBytesPerTokenPastWindow()
	r.ImageTokens = cfg.MMTokensPerImage
	var full []string
	for i, lt := range cfg.Text.LayerTypes {
		if lt == model.FullAttention {
			full = append(full, fmt.Sprint(i))
		}
	}
	r.LayerPattern = fmt.Sprintf("%d layers: %d sliding (window %d, RoPE base %g), %d full (RoPE base %g, linear scaling %g) at %s",
		cfg.Text.NumHiddenLayers, cfg.Text.NumHiddenLayers-len(full), cfg.Text.SlidingWindow, cfg.Text.RopeLocalBaseFreq,
		len(full), cfg.Text.RopeTheta, cfg.Text.RopeScalingFactor, strings.Join(full, ", "))
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	t := cfg.Text
	fmt.Fprintf(stdout, "model          %s\n", r.Model)
	fmt.Fprintf(stdout, "architecture   %s (%s)\n", r.Architecture, r.ModelType)
	fmt.Fprintf(stdout, "decoder        hidden %d, MLP %d, %d heads (%d KV heads, head_dim %d), vocab %d\n",
		t.HiddenSize, t.IntermediateSize, t.NumAttentionHeads, t.NumKeyValueHeads, t.HeadDim, t.VocabSize)
	fmt.Fprintf(stdout, "layers         %s\n", r.LayerPattern)
	if v := cfg.Vision; v != nil {
		fmt.Fprintf(stdout, "vision         SigLIP %dx%d, patch %d, hidden %d, %d layers, %d heads; %d tokens per image\n",
			v.ImageSize, v.ImageSize, v.PatchSize, v.HiddenSize, v.NumHiddenLayers, v.NumAttentionHeads, cfg.MMTokensPerImage)
	}
	parts := make([]string, 0, len(r.Params))
	var total int64
	for p, n := range r.Params {
		parts = append(parts, fmt.Sprintf("%s %.3fB", p, float64(n)/1e9))
		total += n
	}
	sort.Strings(parts)
	fmt.Fprintf(stdout, "parameters     %.3fB (%s)\n", float64(total)/1e9, strings.Join(parts, ", "))
	var dts []string
	for d, n := range r.DTypes {
		dts = append(dts, fmt.Sprintf("%s x%d", d, n))
	}
	sort.Strings(dts)
	fmt.Fprintf(stdout, "dtypes         %s\n", strings.Join(dts, ", "))
	fmt.Fprintf(stdout, "weights        %.2f GB (memory-mapped, as stored)\n", float64(r.WeightBytes)/1e9)
	fmt.Fprintf(stdout, "kv cache       %.2f GB at %d tokens (float32; sliding layers keep %d)\n", float64(r.KVCacheBytes)/1e9, r.Context, t.SlidingWindow)
	fmt.Fprintf(stdout, "kv per token   %d KiB (%d KiB past the sliding window)\n", r.KVBytesPerToken>>10, r.KVBytesPerTokenPastWindow>>10)
	return nil
}
