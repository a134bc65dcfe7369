package model

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/internal/npy"
	"github.com/medgemma/medgemma/kernels"
)

func tinyDir(name string) string { return filepath.Join("..", "testdata", "models", name) }

type golden struct {
	InputIDs            []int32     `json:"input_ids"`
	TokenTypeIDs        []int32     `json:"token_type_ids"`
	Top10IDs            [][]int32   `json:"top10_ids"`
	Top10Logits         [][]float64 `json:"top10_logits"`
	LogSumExp           []float64   `json:"logsumexp"`
	GreedyNewIDs        []int32     `json:"greedy_new_ids"`
	GreedyStepTop10     [][2][]float64
	GreedyStepTop10Raw  json.RawMessage `json:"greedy_step_top10"`
	GreedyStepLogSumExp []float64       `json:"greedy_step_logsumexp"`
}

func loadGolden(t testing.TB, name string) *golden {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tinyDir(name), "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(g.GreedyStepTop10Raw, &g.GreedyStepTop10); err != nil {
		t.Fatal(err)
	}
	if g.TokenTypeIDs == nil { // text-only: no images
		g.TokenTypeIDs = make([]int32, len(g.InputIDs))
	}
	return &g
}

func loadNpy(t testing.TB, model, name string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(filepath.Join(tinyDir(model), name))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// relErr is max |got - want| / max |want|: the error relative to the
// tensor's scale.
func relErr(got, want []float32) float64 {
	var d, m float64
	for i := range want {
		d = max(d, math.Abs(float64(got[i])-float64(want[i])))
		m = max(m, math.Abs(float64(want[i])))
	}
	if m == 0 {
		return d
	}
	return d / m
}

// topK returns the indices of the k largest values, largest first.
func topK(v []float32, k int) []int32 {
	idx := make([]int32, 0, k+1)
	for i, x := range v {
		if len(idx) == k && x <= v[idx[k-1]] {
			continue
		}
		j := sort.Search(len(idx), func(j int) bool { return v[idx[j]] < x })
		idx = append(idx, 0)
		copy(idx[j+1:], idx[j:])
		idx[j] = int32(i)
		if len(idx) > k {
			idx = idx[:k]
		}
	}
	return idx
}

// checkLogits compares one position's logits with the golden top-10 and
// logsumexp, returning the worst relative error.
func checkLogits(t *testing.T, where string, logits []float32, ids []int32, want []float64, lse float64) float64 {
	t.Helper()
	got := topK(logits, len(ids))
	worst := 0.0
	for i, id := range ids {
		if got[i] != id {
			// Ties within float noise may swap order; the logit must still match.
			if math.Abs(float64(logits[got[i]])-want[i]) > 1e-4*math.Abs(want[i]) {
				t.Errorf("%s: top-%d id %d (%.6f), want %d (%.6f)", where, i, got[i], logits[got[i]], id, want[i])
			}
		}
		worst = max(worst, math.Abs(float64(logits[id])-want[i])/math.Abs(want[i]))
	}
	lg := kernels.LogSumExp(logits)
	worst = max(worst, math.Abs(lg-lse)/math.Abs(lse))
	return worst
}

// runParity runs the full prompt forward and checks every intermediate tensor
// and the logits at every position.
func runParity(t *testing.T, name string, imageFeatures []float32) {
	m, err := Load(tinyDir(name))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	g := loadGolden(t, name)
	n := len(g.InputIDs)
	h := m.Config.Text.HiddenSize
	s, err := m.NewSession(n+64, n)
	if err != nil {
		t.Fatal(err)
	}
	embeds := loadNpy(t, name, "inputs_embeds.f32.npy")
	layers := loadNpy(t, name, "layer_outputs.f32.npy")
	final := loadNpy(t, name, "final_norm.f32.npy")
	worst := map[string]float64{}
	s.Hook = func(tag string, data []float32, rows int) {
		var want []float32
		switch {
		case tag == "inputs_embeds":
			want = embeds.Data
		case tag == "final_norm":
			want = final.Data
		default:
			var li int
			fmt.Sscanf(tag, "layer.%d", &li)
			want = layers.Data[li*n*h : (li+1)*n*h]
		}
		e := relErr(data[:rows*h], want)
		worst[tag] = e
		if e > 1e-4 {
			t.Errorf("%s %s: relative error %.3g", name, tag, e)
		}
	}
	hidden, err := s.Forward(context.Background(), promptInput(t, g, imageFeatures, h))
	if err != nil {
		t.Fatal(err)
	}
	logits := make([]float32, m.Config.Text.VocabSize)
	worstLogit := 0.0
	for i := range n {
		s.Logits(logits, hidden[i*h:(i+1)*h])
		worstLogit = max(worstLogit, checkLogits(t, fmt.Sprintf("%s position %d", name, i), logits, g.Top10IDs[i], g.Top10Logits[i], g.LogSumExp[i]))
		if i == n-1 {
			if e := relErr(logits, loadNpy(t, name, "last_logits.f32.npy").Data); e > 1e-4 {
				t.Errorf("%s last logits: relative error %.3g", name, e)
			}
		}
	}
	if worstLogit > 1e-4 {
		t.Errorf("%s: logits relative error %.3g", name, worstLogit)
	}
	worstLayer := 0.0
	for tag, e := range worst {
		if strings.HasPrefix(tag, "layer.") {
			worstLayer = max(worstLayer, e)
		}
	}
	t.Logf("%s: worst relative errors: inputs_embeds %.2g, layer outputs %.2g, final_norm %.2g, top-10 logits and logsumexp %.2g",
		name, worst["inputs_embeds"], worstLayer, worst["final_norm"], worstLogit)
}

func TestParityText(t *testing.T) {
	runParity(t, "tiny-medgemma-text", nil)
}

func TestParityMultimodal(t *testing.T) {
	name := "tiny-medgemma"
	m, err := Load(tinyDir(name))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pixels := loadNpy(t, name, "pixel_values.f32.npy")
	var visionErr float64
	features, err := m.EncodeImage(context.Background(), pixels.Data, func(v []float32) {
		visionErr = relErr(v, loadNpy(t, name, "vision_last_hidden.f32.npy").Data)
	})
	if err != nil {
		t.Fatal(err)
	}
	featErr := relErr(features, loadNpy(t, name, "image_features.f32.npy").Data)
	t.Logf("SigLIP output relative error %.2g, image features %.2g", visionErr, featErr)
	if visionErr > 1e-4 || featErr > 1e-4 {
		t.Errorf("vision relative error %.3g, image features %.3g", visionErr, featErr)
	}
	runParity(t, name, features)
}

// goldenPrompt is the golden prompt with its one image's features.
func goldenPrompt(g *golden, features []float32) *Prompt {
	return &Prompt{IDs: g.InputIDs, TokenTypeIDs: g.TokenTypeIDs, Image: func(_ context.Context, i int) ([]float32, error) {
		if i != 0 {
			return nil, fmt.Errorf("image block %d: the golden prompt has one", i)
		}
		return features, nil
	}}
}

// promptInput is the golden prompt as one chunk, the image features written
// into the soft-token rows by Prompt.Input, as the prefill does it.
func promptInput(t *testing.T, g *golden, features []float32, h int) Input {
	t.Helper()
	in, err := goldenPrompt(g, features).Input(context.Background(), 0, len(g.InputIDs), h, nil)
	if err != nil {
		t.Fatal(err)
	}
	return in
}
