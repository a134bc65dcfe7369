package loadgen

import (
	"strings"
	"testing"
	"time"
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

// TestPrompts: prompts differ from their first word, and have the words
// asked for.
func TestPrompts(t *testing.T) {
	a, b := prompt(1, 50), prompt(2, 50)
	if a[:7] == b[:7] || len(strings.Fields(a)) != 50 || prompt(1, 50) != a {
		t.Errorf("prompts %q / %q", a, b)
	}
}
