package loadgen

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medgemma/medgemma/internal/testenv"
	"github.com/medgemma/medgemma/tokenizer"
)

// TestStats: nearest-rank percentiles and the per-request measures.
func TestStats(t *testing.T) {
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(100 - i) // unsorted
	}
	if s := statsOf(v); s != (Stats{Mean: 50.5, P50: 50, P90: 90, P99: 99, Max: 100}) {
		t.Errorf("1..100: %+v", s)
	}
	if s := statsOf([]float64{3}); s != (Stats{Mean: 3, P50: 3, P90: 3, P99: 3, Max: 3}) {
		t.Errorf("one value: %+v", s)
	}
	samples := []sample{
		{ttft: time.Second, latency: 3 * time.Second, prompt: 10, complete: 5},
		{ttft: 2 * time.Second, latency: 2 * time.Second, prompt: 12, cached: 4, complete: 1},
		{err: errTest},
	}
	r, err := summarize(Options{Concurrency: 2}, samples, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// TPOT: (3-1)/(5-1) for the first; the second has one token, no TPOT.
	if r.Failed != 1 || r.FirstError != "boom" || r.CompletionTokens != 6 || r.PromptTokens != 22 || r.CachedTokens != 4 ||
		r.OutputTokensPerS != 1.5 || r.RequestsPerS != 0.5 || r.TPOT != (Stats{Mean: 0.5, P50: 0.5, P90: 0.5, P99: 0.5, Max: 0.5}) || r.TTFT.Max != 2 {
		t.Errorf("summary %+v", r)
	}
}

type testError struct{}

func (testError) Error() string { return "boom" }

var errTest = testError{}

// TestPrompts: a prompt of n tokens is n tokens of Gemma's vocabulary; no
// two of a run, nor of runs with different seeds, share their first 7.
func TestPrompts(t *testing.T) {
	tok, err := tokenizer.Load(filepath.Join(testenv.TokenizerDir(t), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 5, 16, 100} {
		for _, i := range []int{0, 1, 49, 50, 2500, 123456} {
			if ids := tok.Encode(prompt(99, i, n), false); len(ids) != n {
				t.Errorf("prompt(99, %d, %d) = %q is %d tokens", i, n, prompt(99, i, n), len(ids))
			}
		}
	}
	seen := map[string]string{}
	for _, seed := range []uint64{1, 2, 53, 1 << 40} {
		for i := range 3000 {
			head := strings.Join(strings.Fields(prompt(seed, i, 20))[:7], " ")
			at := fmt.Sprint(seed, "/", i)
			if other, ok := seen[head]; ok {
				t.Fatalf("prompts %s and %s start alike: %q", other, at, head)
			}
			seen[head] = at
		}
	}
	if a, b := prompt(5, 7, 30), prompt(5, 7, 30); a != b || a == prompt(5, 8, 30) {
		t.Error("prompts are not a function of their seed and number")
	}
}
