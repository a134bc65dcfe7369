package model

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/medgemma/medgemma/kernels"
)

// TestKVTypes: with a float16 or Q8_0 KV cache, greedy decoding of both
// tiny checkpoints (the vision one's image included) follows transformers'
// ids, and every step's top-10 logits stay within the cache's rounding of
// transformers' (float16 within 2e-4 relative, Q8_0 within 5e-3; float32
// is within 1e-4); the prompt prefilled in chunks across the sliding window
// gives the same logits as in one; a token's memory is half (f16) or 34/128
// (Q8_0) of float32's.
func TestKVTypes(t *testing.T) {
	for _, c := range []struct {
		typ   kernels.DType
		bound float64
	}{{kernels.F16, 2e-4}, {kernels.Q8_0, 5e-3}} {
		for _, name := range []string{"tiny-medgemma-text", "tiny-medgemma"} {
			m, err := LoadWith(tinyDir(name), LoadOptions{KVType: c.typ})
			if err != nil {
				t.Fatal(err)
			}
			g := loadGolden(t, name)
			var features []float32
			if m.HasVision() {
				if features, err = m.EncodeImage(context.Background(), loadNpy(t, name, "pixel_values.f32.npy").Data, nil); err != nil {
					t.Fatal(err)
				}
			}
			n := len(g.InputIDs)
			s, err := m.NewSession(n+len(g.GreedyNewIDs)+1, n)
			if err != nil {
				t.Fatal(err)
			}
			if s.pool.Type() != c.typ {
				t.Fatalf("pool of type %s", s.pool.Type())
			}
			tc := m.Config.Text
			f32 := int64(tc.NumHiddenLayers) * 2 * int64(tc.NumKeyValueHeads*tc.HeadDim) * 4
			if want := f32 * int64(kernels.RowBytes(c.typ, 128)) / 512; s.pool.BytesPerToken() != want {
				t.Fatalf("%s: %d bytes per token, want %d", c.typ, s.pool.BytesPerToken(), want)
			}
			h := tc.HiddenSize
			hidden, err := s.Forward(context.Background(), promptInput(t, g, features, h))
			if err != nil {
				t.Fatal(err)
			}
			last := hidden[(n-1)*h : n*h]
			logits := make([]float32, tc.VocabSize)
			var worst float64
			for step, want := range g.GreedyNewIDs {
				s.Logits(logits, last)
				top := g.GreedyStepTop10[step]
				ids := make([]int32, len(top[0]))
				for i, v := range top[0] {
					ids[i] = int32(v)
				}
				for i, id := range ids {
					worst = max(worst, math.Abs(float64(logits[id])-top[1][i])/math.Abs(top[1][i]))
				}
				if got := topK(logits, 1)[0]; got != want {
					t.Fatalf("%s %s step %d: greedy id %d, want %d", c.typ, name, step, got, want)
				}
				if last, err = s.Forward(context.Background(), Input{IDs: []int32{want}}); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%s cache, %s: %d greedy steps as transformers', top-10 logits within %.2g relative", c.typ, name, len(g.GreedyNewIDs), worst)
			if worst > c.bound {
				t.Errorf("%s cache, %s: logits off by %.3g relative, bound %.g", c.typ, name, worst, c.bound)
			}
			m.Close()
		}
		// In chunks across the window (32) as in one pass: the same logits
		// up to the cache's rounding of the chunk boundaries' reads.
		m, err := LoadWith(tinyDir("tiny-medgemma-text"), LoadOptions{KVType: c.typ})
		if err != nil {
			t.Fatal(err)
		}
		g := loadGolden(t, "tiny-medgemma-text")
		ids := g.InputIDs
		one, err := m.NewSession(len(ids)+1, len(ids))
		if err != nil {
			t.Fatal(err)
		}
		split, _ := m.NewSession(len(ids)+1, len(ids))
		h, v := m.Config.Text.HiddenSize, m.Config.Text.VocabSize
		hid, err := one.Forward(context.Background(), Input{IDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		a := make([]float32, v)
		one.Logits(a, hid[(len(ids)-1)*h:])
		var last []float32
		for p := 0; p < len(ids); p += 40 {
			end := min(p+40, len(ids))
			out, err := split.Forward(context.Background(), Input{IDs: ids[p:end]})
			if err != nil {
				t.Fatal(err)
			}
			last = out[(end-p-1)*h : (end-p)*h]
		}
		b := make([]float32, v)
		split.Logits(b, last)
		for i := range a {
			if d := math.Abs(float64(a[i] - b[i])); d > 1e-4*math.Abs(float64(a[i]))+1e-4 {
				t.Fatalf("%s: logit %d %v in one pass, %v in chunks of 40", c.typ, i, a[i], b[i])
			}
		}
		m.Close()
	}
	if _, err := LoadWith(tinyDir("tiny-medgemma-text"), LoadOptions{KVType: kernels.Q4_K}); err == nil {
		t.Fatal("a Q4_K KV cache loads")
	}
	for _, s := range []string{"f32", "F16", "q8_0", "q4_0"} {
		d, err := ParseKVType(s)
		if (s == "q4_0") != (err != nil) || err == nil && fmt.Sprint(d) != map[string]string{"f32": "F32", "F16": "F16", "q8_0": "Q8_0"}[s] {
			t.Errorf("ParseKVType(%q) = %v, %v", s, d, err)
		}
	}
}
