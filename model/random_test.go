package model

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/gguf"
	"github.com/medgemma/medgemma/safetensors"
)

func TestShapes(t *testing.T) {
	for _, name := range ShapeNames() {
		cfg, err := ParseConfig([]byte(Shapes[name]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := cfg.Params()
		total := float64(p["text"]+p["vision"]+p["projector"]) / 1e9
		t.Logf("%s: text %.3fB, vision %.3fB, projector %.4fB, total %.2fB", name, float64(p["text"])/1e9, float64(p["vision"])/1e9, float64(p["projector"])/1e9, total)
		// Published sizes: Gemma 3 4B has 4.3B parameters, 27B 27.4B (text-only 27.0B).
		want := map[string]float64{"medgemma-4b-it": 4.3, "medgemma-27b-it": 27.4, "medgemma-27b-text-it": 27.0}[name]
		if math.Abs(total-want) > 0.1 {
			t.Errorf("%s: %.2fB parameters, published %.1fB", name, total, want)
		}
	}
	cfg, _ := ParseConfig([]byte(Shapes["medgemma-4b-it"]))
	tc := cfg.Text
	if tc.NumAttentionHeads != 8 || tc.NumKeyValueHeads != 4 || tc.HeadDim != 256 || tc.QueryPreAttnScalar != 256 ||
		tc.VocabSize != 262208 || tc.RopeScalingFactor != 8 || tc.RopeLocalBaseFreq != 10000 || tc.RopeTheta != 1e6 {
		t.Errorf("4B defaults: %+v", tc)
	}
	if got := strings.Count(strings.Join(tc.LayerTypes, ","), FullAttention); got != 5 || tc.LayerTypes[5] != FullAttention {
		t.Errorf("4B layer pattern: %d full layers (%v)", got, tc.LayerTypes)
	}
}

// TestRandomCheckpointNewLayout writes a random checkpoint of the tiny
// multimodal shape in transformers' newer tensor layout (model.language_model.*,
// model.vision_tower.vision_model.*) and runs it.
func TestRandomCheckpointNewLayout(t *testing.T) {
	cfgJSON, err := os.ReadFile(filepath.Join(tinyDir("tiny-medgemma"), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteRandom(dir, cfgJSON, 1); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	feats, err := m.EncodeImage(context.Background(), make([]float32, 3*112*112), nil)
	if err != nil || len(feats) != 16*24 {
		t.Fatalf("image features: %d, %v", len(feats), err)
	}
	s, err := m.NewSession(64, 16)
	if err != nil {
		t.Fatal(err)
	}
	hidden, err := s.Forward(context.Background(), Input{IDs: []int32{2, 105, 2364}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range hidden {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite hidden state")
		}
	}
}

func TestLoadErrors(t *testing.T) {
	cfgJSON, _ := os.ReadFile(filepath.Join(tinyDir("tiny-medgemma-text"), "config.json"))
	dir := t.TempDir()
	if err := WriteRandom(dir, cfgJSON, 2); err != nil {
		t.Fatal(err)
	}
	// A config that disagrees with the weights: the tensor and both shapes are named.
	bad := strings.Replace(string(cfgJSON), `"intermediate_size": 40`, `"intermediate_size": 41`, 1)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(bad), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "tensor model.layers.0.mlp.gate_proj.weight has shape [40 16], want [41 16]") {
		t.Errorf("shape mismatch: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "llama"}`), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), `model_type "llama" is not supported`) {
		t.Errorf("model type: %v", err)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("empty dir: %v", err)
	}
	// A checkpoint missing a tensor.
	os.WriteFile(filepath.Join(dir, "config.json"), cfgJSON, 0o644)
	cfg, _ := ParseConfig(cfgJSON)
	var ts []safetensors.WriteTensor
	for _, spec := range cfg.Tensors() {
		if spec.Name == "model.norm.weight" {
			continue
		}
		ts = append(ts, safetensors.WriteTensor{Name: spec.Name, DType: safetensors.BF16, Shape: spec.Shape, Data: make([]byte, 2*spec.Elements())})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "tensor norm.weight is missing (looked for language_model.model.norm.weight, model.language_model.norm.weight, model.norm.weight") {
		t.Errorf("missing tensor: %v", err)
	}
}

// TestHostileConfigSizes: sizes in config.json are capped before anything is
// allocated by them (num_hidden_layers 1e9 died in ParseConfig, 1e7 took 6
// GB; vision layers 1e8 and head_dim 2^40 died while binding), and sizes
// within the caps that the checkpoint does not have fail at the first
// missing tensor with memory in proportion to the checkpoint.
func TestHostileConfigSizes(t *testing.T) {
	text, _ := os.ReadFile(filepath.Join(tinyDir("tiny-medgemma-text"), "config.json"))
	mm, _ := os.ReadFile(filepath.Join(tinyDir("tiny-medgemma"), "config.json"))
	set := func(cfgJSON []byte, path []string, v any) []byte {
		var m map[string]any
		if err := json.Unmarshal(cfgJSON, &m); err != nil {
			t.Fatal(err)
		}
		obj := m
		for _, k := range path[:len(path)-1] {
			obj = obj[k].(map[string]any)
		}
		obj[path[len(path)-1]] = v
		delete(obj, "layer_types")
		out, _ := json.Marshal(m)
		return out
	}
	for _, c := range []struct {
		cfg  []byte
		want string
	}{
		{set(text, []string{"num_hidden_layers"}, 1e9), "num_hidden_layers 1000000000 is outside 1..1024"},
		{set(text, []string{"num_hidden_layers"}, 1e7), "num_hidden_layers 10000000 is outside 1..1024"},
		{set(text, []string{"head_dim"}, 1<<40), "head_dim 1099511627776 is outside 1..4096"},
		{set(text, []string{"vocab_size"}, -5), "vocab_size -5 is outside"},
		{set(text, []string{"max_position_embeddings"}, 1<<40), "max_position_embeddings 1099511627776 is outside"},
		{set(mm, []string{"vision_config", "num_hidden_layers"}, 1e8), "vision_config num_hidden_layers 100000000 is outside 1..1024"},
		{set(mm, []string{"vision_config", "image_size"}, 1<<20), "vision_config image_size 1048576 is outside"},
		{set(mm, []string{"mm_tokens_per_image"}, 1<<30), "mm_tokens_per_image 1073741824 is outside"},
	} {
		if _, err := ParseConfig(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want %q", err, c.want)
		}
	}
	// Within the caps, but more than the checkpoint holds.
	for _, c := range []struct {
		name string
		path []string
		v    any
		want string
	}{
		{"tiny-medgemma-text", []string{"num_hidden_layers"}, 1000, "layers.8.input_layernorm.weight is missing"},
		{"tiny-medgemma-text", []string{"head_dim"}, 4096, "has shape"},
		{"tiny-medgemma", []string{"vision_config", "num_hidden_layers"}, 1000, "encoder.layers.2.layer_norm1.weight is missing"},
	} {
		dir := t.TempDir()
		for _, f := range []string{"model.safetensors"} {
			data, err := os.ReadFile(filepath.Join(tinyDir(c.name), f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, f), data, 0o644)
		}
		orig, _ := os.ReadFile(filepath.Join(tinyDir(c.name), "config.json"))
		os.WriteFile(filepath.Join(dir, "config.json"), set(orig, c.path, c.v), 0o644)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Load(dir)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v=%v: %v, want %q", c.name, c.path, c.v, err, c.want)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("%s %v=%v: loading allocated %d MB", c.name, c.path, c.v, alloc>>20)
		}
	}
}

func TestConfigVariants(t *testing.T) {
	// transformers 5 rope_parameters, per layer type.
	cfg, err := ParseConfig([]byte(`{"model_type": "gemma3_text", "num_hidden_layers": 2, "layer_types": ["sliding_attention", "full_attention"],
		"rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 500000.0},
		"sliding_attention": {"rope_type": "default", "rope_theta": 20000.0}}}`))
	if err != nil || cfg.Text.RopeScalingFactor != 4 || cfg.Text.RopeTheta != 5e5 || cfg.Text.RopeLocalBaseFreq != 2e4 {
		t.Errorf("rope_parameters: %+v %v", cfg, err)
	}
	for in, want := range map[string]string{
		`{"model_type": "gemma3_text", "num_attention_heads": 6}`:                           "not a multiple of num_key_value_heads",
		`{"model_type": "gemma3_text", "rope_scaling": {"rope_type": "yarn", "factor": 2}}`: `rope type "yarn" is not supported`,
		`{"model_type": "gemma3_text", "num_hidden_layers": 2, "layer_types": ["x", "y"]}`:  `layer_types[0] is "x"`,
		`{"model_type": "gemma3"}`: "without text_config",
	} {
		if _, err := ParseConfig([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

// TestWriteRandomGGUF: random weights of a config in every block type load
// as a GGUF model, give finite logits, and DecodeBytes counts their bytes.
func TestWriteRandomGGUF(t *testing.T) {
	cfgJSON, err := os.ReadFile(filepath.Join("..", "testdata", "gguf", "small-gemma3", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []gguf.Type{gguf.Q8_0, gguf.Q4_0, gguf.Q4_K, gguf.Q5_K, gguf.Q6_K, gguf.BF16} {
		path := filepath.Join(t.TempDir(), "r.gguf")
		if err := WriteRandomGGUF(path, cfgJSON, typ, 1); err != nil {
			t.Fatal(err)
		}
		m, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		// 6 layers of 256x256 q, o and 128x256 k, v, 3 MLP matrices of
		// 256x512, and the 4096x256 embedding as the LM head.
		weights := 6*(2*256*256+2*128*256+3*256*512) + 4096*256
		if got, want := m.DecodeBytes(), int64(weights/typ.BlockSize()*typ.TypeSize()); got != want {
			t.Errorf("%s: DecodeBytes %d, want %d", typ, got, want)
		}
		s, err := m.NewSession(8, 8)
		if err != nil {
			t.Fatal(err)
		}
		h, err := s.Forward(context.Background(), Input{IDs: []int32{2, 10, 20, 30}})
		if err != nil {
			t.Fatal(err)
		}
		logits := make([]float32, 4096)
		s.Logits(logits, h[3*256:])
		for i, v := range logits {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || math.Abs(float64(v)) > 1e4 {
				t.Fatalf("%s: logit %d is %v", typ, i, v)
			}
		}
		m.Close()
	}
}
