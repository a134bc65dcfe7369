package model

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/gguf"
	"github.com/medgemma/medgemma/kernels"
)

var smallGGUF = filepath.Join("..", "testdata", "gguf", "small-gemma3")

type llamaLogits struct {
	Pos       int
	LSE       float64
	TopIDs    []int32   `json:"top_ids"`
	TopLogits []float64 `json:"top_logits"`
}

func readLlamaLogits(t *testing.T, kind, seq string) []llamaLogits {
	t.Helper()
	f, err := os.Open(filepath.Join(smallGGUF, "llama.cpp-logits", kind+"."+seq+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []llamaLogits
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l llamaLogits
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// teacherForced returns the log-softmax of the logits after every position
// of ids.
func teacherForced(t *testing.T, m *Model, ids []int32) [][]float64 {
	t.Helper()
	s, err := m.NewSession(len(ids), len(ids))
	if err != nil {
		t.Fatal(err)
	}
	hidden, err := s.Forward(context.Background(), Input{IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	v := m.Config.Text.VocabSize
	logits := make([]float32, len(ids)*v)
	s.LogitsRows(logits, hidden, len(ids))
	out := make([][]float64, len(ids))
	for p := range ids {
		row := logits[p*v : (p+1)*v]
		mx := math.Inf(-1)
		for _, x := range row {
			mx = max(mx, float64(x))
		}
		var sum float64
		for _, x := range row {
			sum += math.Exp(float64(x) - mx)
		}
		lse := mx + math.Log(sum)
		lp := make([]float64, v)
		for i, x := range row {
			lp[i] = float64(x) - lse
		}
		out[p] = lp
	}
	return out
}

// TestGGUFAgainstLlamaCpp: llama.cpp's quantized files of the small Gemma 3
// model load (config from the metadata, llama.cpp's tensor names, norms
// stored as 1 + w) and give llama.cpp's logits: at every position of both
// sequences, the log-probabilities of llama.cpp's top 10 tokens are within
// what the 8-bit rounding of activations explains (both round activations
// to 8 bits for integer products, where the CPU has them here; on this
// random model that rounding alone moves them by about as much, which the
// test logs by computing them again with float32 activations), and the top
// token is the same at every position.
func TestGGUFAgainstLlamaCpp(t *testing.T) {
	var seqs map[string][]int32
	b, err := os.ReadFile(filepath.Join(smallGGUF, "sequences.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &seqs); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0"} {
		m, err := Load(filepath.Join(smallGGUF, "small-gemma3-"+kind+".gguf"))
		if err != nil {
			t.Fatal(err)
		}
		var maxDiff, sumDiff, actEffect float64
		n, top1 := 0, 0
		for _, seq := range []string{"long", "short"} {
			ids := seqs[seq]
			was := kernels.SetInt8Activations(false)
			exactActs := teacherForced(t, m, ids)
			kernels.SetInt8Activations(was)
			ours := teacherForced(t, m, ids)
			ref := readLlamaLogits(t, kind, seq)
			if len(ref) != len(ids) {
				t.Fatalf("%s %s: %d reference positions for %d ids", kind, seq, len(ref), len(ids))
			}
			for p, r := range ref {
				best := 0
				for i, x := range ours[p] {
					if x > ours[p][best] {
						best = i
					}
				}
				if int32(best) == r.TopIDs[0] {
					top1++
				}
				for k, id := range r.TopIDs {
					d := math.Abs(ours[p][id] - (r.TopLogits[k] - r.LSE))
					maxDiff = max(maxDiff, d)
					actEffect = max(actEffect, math.Abs(ours[p][id]-exactActs[p][id]))
					sumDiff += d
					n++
				}
			}
		}
		positions := len(seqs["long"]) + len(seqs["short"])
		t.Logf("%s: top-10 log-probabilities max |difference| %.4f, mean %.4f; top-1 agreement %d/%d; float32 activations instead of this run's move them by up to %.4f", kind, maxDiff, sumDiff/float64(n), top1, positions, actEffect)
		if maxDiff > 0.3 || top1 != positions {
			t.Errorf("%s: max difference %.4f, top-1 agreement %d/%d", kind, maxDiff, top1, positions)
		}
		m.Close()
	}
}

// TestConfigFromGGUF: the metadata of llama.cpp's file gives the model's
// config.json, field by field.
func TestConfigFromGGUF(t *testing.T) {
	f, err := gguf.Open(filepath.Join(smallGGUF, "small-gemma3-Q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ConfigFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := LoadConfig(smallGGUF)
	if err != nil {
		t.Fatal(err)
	}
	g, w := got.Text, want.Text
	if g.VocabSize != w.VocabSize || g.HiddenSize != w.HiddenSize || g.IntermediateSize != w.IntermediateSize ||
		g.NumHiddenLayers != w.NumHiddenLayers || g.NumAttentionHeads != w.NumAttentionHeads || g.NumKeyValueHeads != w.NumKeyValueHeads ||
		g.HeadDim != w.HeadDim || g.RMSNormEps != w.RMSNormEps || g.QueryPreAttnScalar != w.QueryPreAttnScalar ||
		g.SlidingWindow != w.SlidingWindow || strings.Join(g.LayerTypes, ",") != strings.Join(w.LayerTypes, ",") ||
		g.RopeTheta != w.RopeTheta || g.RopeScalingFactor != w.RopeScalingFactor || g.RopeLocalBaseFreq != w.RopeLocalBaseFreq ||
		g.MaxPositionEmbeddings != w.MaxPositionEmbeddings {
		t.Errorf("from GGUF %+v\nconfig.json %+v", g, w)
	}
	if len(got.EOSTokenIDs) == 0 || got.EOSTokenIDs[0] != 1 {
		t.Errorf("eos %v", got.EOSTokenIDs)
	}
}

// TestHostileGGUF: metadata that is missing, of the wrong type or out of
// bounds, and missing tensors, are errors that name them, before anything
// is sized by them.
func TestHostileGGUF(t *testing.T) {
	src, err := gguf.Open(filepath.Join(smallGGUF, "small-gemma3-Q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, c := range []struct {
		name, key string
		value     *gguf.Value // nil: remove the key
		drop      string      // a tensor to leave out
		want      string
	}{
		{"no architecture", "general.architecture", nil, "", "general.architecture is missing"},
		{"llama", "general.architecture", ptr(gguf.Of("llama")), "", `"llama"; only gemma3`},
		{"no layers", "gemma3.block_count", nil, "", "gemma3.block_count is missing"},
		{"a billion layers", "gemma3.block_count", ptr(gguf.Of(uint32(1e9))), "", "num_hidden_layers 1000000000 is outside"},
		{"negative heads", "gemma3.attention.head_count", ptr(gguf.Of(int32(-4))), "", "head_count is -4, outside"},
		{"string width", "gemma3.embedding_length", ptr(gguf.Of("wide")), "", "embedding_length is a string, not an integer"},
		{"nan eps", "gemma3.attention.layer_norm_rms_epsilon", ptr(gguf.Of(float32(math.NaN()))), "", "layer_norm_rms_epsilon is NaN"},
		{"rope type", "gemma3.rope.scaling.type", ptr(gguf.Of("yarn")), "", `"yarn" is not supported`},
		{"missing tensor", "", nil, "blk.3.ffn_up.weight", "tensor layers.3.mlp.up_proj.weight is missing (looked for blk.3.ffn_up.weight)"},
	} {
		var meta []gguf.KV
		for _, kv := range src.Metadata {
			if kv.Key == c.key {
				if c.value != nil {
					meta = append(meta, gguf.KV{Key: kv.Key, Value: *c.value})
				}
				continue
			}
			meta = append(meta, kv)
		}
		var tensors []gguf.WriteTensor
		for _, tn := range src.Tensors {
			if tn.Name != c.drop {
				tensors = append(tensors, gguf.WriteTensor{TensorSpec: gguf.TensorSpec{Name: tn.Name, Type: tn.Type, Dims: tn.Dims}, Data: tn.Data})
			}
		}
		path := filepath.Join(t.TempDir(), "m.gguf")
		if err := gguf.WriteFile(path, meta, tensors); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestAttentionBlocks: a query's attention is the same bit for bit
// whatever block it shares the keys with: blocks of eight, blocks cut by
// the bound on their scores, one query at a time.
func TestAttentionBlocks(t *testing.T) {
	var seqs map[string][]int32
	b, err := os.ReadFile(filepath.Join(smallGGUF, "sequences.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &seqs); err != nil {
		t.Fatal(err)
	}
	m, err := Load(filepath.Join(smallGGUF, "small-gemma3-Q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	ids := seqs["long"]
	want := teacherForced(t, m, ids)
	saved := attnScores
	defer func() { attnScores = saved }()
	nH := m.Config.Text.NumAttentionHeads
	for _, bound := range []int{1, 3 * nH * len(ids) / 2} {
		attnScores = bound
		got := teacherForced(t, m, ids)
		for p := range want {
			for i, v := range want[p] {
				if got[p][i] != v {
					t.Fatalf("scores bound %d: position %d logit %d: %v, with blocks of 8 %v", bound, p, i, got[p][i], v)
				}
			}
		}
	}
}
