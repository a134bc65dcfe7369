package generate

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/internal/npy"
	"github.com/medgemma/medgemma/internal/testtok"
	"github.com/medgemma/medgemma/model"
)

func tinyDir(name string) string { return filepath.Join("..", "testdata", "models", name) }

type golden struct {
	InputIDs            []int32        `json:"input_ids"`
	Top10IDs            [][]int32      `json:"top10_ids"`
	Top10Logits         [][]float64    `json:"top10_logits"`
	LogSumExp           []float64      `json:"logsumexp"`
	TokenTypeIDs        []int32        `json:"token_type_ids"`
	GreedyNewIDs        []int32        `json:"greedy_new_ids"`
	GreedyStepTop10     [][2][]float64 `json:"greedy_step_top10"`
	GreedyStepLogSumExp []float64      `json:"greedy_step_logsumexp"`
}

// prompt loads a tiny checkpoint and runs its golden prompt (with the image
// for the multimodal one) through a session.
func prompt(t *testing.T, name string, chunk int) (*model.Model, *model.Session, *golden, []float32) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tinyDir(name), "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(tinyDir(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	n := len(g.InputIDs)
	p := &model.Prompt{IDs: g.InputIDs}
	if m.HasVision() {
		px, err := npy.ReadFile(filepath.Join(tinyDir(name), "pixel_values.f32.npy"))
		if err != nil {
			t.Fatal(err)
		}
		p.TokenTypeIDs = g.TokenTypeIDs
		p.Image = func(ctx context.Context, i int) ([]float32, error) { return m.EncodeImage(ctx, px.Data, nil) }
	}
	s, err := m.NewSession(n+len(g.GreedyNewIDs)+1, 64)
	if err != nil {
		t.Fatal(err)
	}
	last, err := Prefill(context.Background(), s, p, chunk)
	if err != nil {
		t.Fatal(err)
	}
	return m, s, &g, last
}

// TestGreedyReproducesTransformers generates greedily with logprobs and
// compares ids and per-step logprobs (logit minus logsumexp) with
// transformers' generate.
func TestGreedyReproducesTransformers(t *testing.T) {
	tok := testtok.Gemma3(t)
	for _, c := range []struct {
		name  string
		chunk int
	}{{"tiny-medgemma-text", 64}, {"tiny-medgemma", 20}} {
		_, s, g, last := prompt(t, c.name, c.chunk)
		o := Options{MaxNewTokens: len(g.GreedyNewIDs), StopTokens: []int32{1, 106}, Logprobs: true, TopLogprobs: 5}
		var streamed strings.Builder
		res, err := Run(context.Background(), s, tok, last, g.InputIDs, o, Output{Text: func(text string) error {
			streamed.WriteString(text)
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Tokens, g.GreedyNewIDs) || res.FinishReason != FinishLength {
			t.Fatalf("%s: tokens %v (%s), want %v", c.name, res.Tokens, res.FinishReason, g.GreedyNewIDs)
		}
		if res.Text != tok.Decode(g.GreedyNewIDs, true) || streamed.String() != res.Text {
			t.Errorf("%s: text %q, streamed %q", c.name, res.Text, streamed.String())
		}
		worst := 0.0
		for step, lp := range res.Logprobs {
			top, lse := g.GreedyStepTop10[step], g.GreedyStepLogSumExp[step]
			want := top[1][0] - lse
			worst = max(worst, math.Abs(float64(lp.Logprob)-want)/math.Abs(lse))
			for i, alt := range lp.Top {
				if alt.Token != int32(top[0][i]) {
					t.Errorf("%s step %d alternative %d: id %d, want %v", c.name, step, i, alt.Token, top[0][i])
				}
				worst = max(worst, math.Abs(float64(alt.Logprob)-(top[1][i]-lse))/math.Abs(lse))
			}
		}
		t.Logf("%s: %d steps, worst logprob error %.2g relative to logsumexp", c.name, len(res.Logprobs), worst)
		if worst > 1e-4 {
			t.Errorf("%s: logprobs off by %.3g", c.name, worst)
		}
	}
}

func TestSeededSampling(t *testing.T) {
	tok := testtok.Gemma3(t)
	o, err := Defaults(tinyDir("tiny-medgemma-text"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Temperature != 1 || o.TopK != 64 || o.TopP != 0.95 || !slices.Equal(o.StopTokens, []int32{1, 106}) {
		t.Fatalf("defaults from generation_config.json: %+v", o)
	}
	o.MaxNewTokens, o.HasSeed = 20, true
	run := func(seed uint64) []int32 {
		_, s, g, last := prompt(t, "tiny-medgemma-text", 64)
		o.Seed = seed
		res, err := Run(context.Background(), s, tok, last, g.InputIDs, o, Output{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Tokens
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different tokens:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 gave the same %d tokens", len(a))
	}
}

func TestCancel(t *testing.T) {
	tok := testtok.Gemma3(t)
	_, s, g, last := prompt(t, "tiny-medgemma-text", 64)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := Run(ctx, s, tok, last, g.InputIDs, Options{MaxNewTokens: 30}, Output{Text: func(string) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	}})
	if err != nil || res.FinishReason != FinishCancelled || len(res.Tokens) != 3 {
		t.Errorf("cancelled after 3 pieces: %d tokens, %s, %v", len(res.Tokens), res.FinishReason, err)
	}
}

func TestPenalties(t *testing.T) {
	s := NewSampler(Options{RepetitionPenalty: 2}, 4, []int32{0, 2})
	w := []float32{2, 1, -1, 3}
	s.penalize(w)
	if !slices.Equal(w, []float32{1, 1, -2, 3}) {
		t.Errorf("repetition penalty: %v", w)
	}
	s = NewSampler(Options{FrequencyPenalty: 0.5, PresencePenalty: 1}, 3, []int32{1})
	s.Observe(0)
	s.Observe(0)
	s.Observe(2)
	w = []float32{0, 0, 0}
	s.penalize(w) // token 0: 2 x 0.5 + 1; token 2: 0.5 + 1; token 1 only in the prompt
	if !slices.Equal(w, []float32{-2, 0, -1.5}) {
		t.Errorf("frequency and presence penalties: %v", w)
	}
}

func TestSamplingFilters(t *testing.T) {
	logits := []float32{float32(math.Log(0.5)), float32(math.Log(0.3)), float32(math.Log(0.15)), float32(math.Log(0.05))}
	count := func(o Options) [4]int {
		o.HasSeed, o.Seed = true, 1
		s := NewSampler(o, 4, nil)
		var c [4]int
		for range 4000 {
			c[s.Sample(logits)]++
		}
		return c
	}
	near := func(got int, p float64) bool { return math.Abs(float64(got)/4000-p) < 0.03 }
	if c := count(Options{Temperature: 1}); !near(c[0], 0.5) || !near(c[1], 0.3) || !near(c[2], 0.15) || !near(c[3], 0.05) {
		t.Errorf("plain sampling: %v", c)
	}
	if c := count(Options{Temperature: 1, TopK: 2}); !near(c[0], 0.625) || c[2]+c[3] != 0 {
		t.Errorf("top-k 2: %v", c)
	}
	if c := count(Options{Temperature: 1, TopP: 0.8}); c[2]+c[3] != 0 || !near(c[0], 0.625) {
		t.Errorf("top-p 0.8 keeps 0.5+0.3: %v", c)
	}
	if c := count(Options{Temperature: 1, MinP: 0.25}); c[3] != 0 || c[2] == 0 {
		t.Errorf("min-p 0.25 drops 0.05 < 0.125, keeps 0.15: %v", c)
	}
	if c := count(Options{Temperature: 0}); c[0] != 4000 {
		t.Errorf("greedy: %v", c)
	}
	if c := count(Options{Temperature: 0.01}); c[0] < 3990 {
		t.Errorf("low temperature: %v", c)
	}
}

func TestStopStrings(t *testing.T) {
	s := newStopper([]string{"STOP", "\n\n"})
	var out []string
	for _, p := range []string{"Hel", "lo S", "T", "x ST", "OP more"} {
		e, stopped := s.add(p)
		out = append(out, e)
		if stopped {
			break
		}
	}
	if want := []string{"Hel", "lo ", "", "STx ", ""}; !slices.Equal(out, want) || s.final() != "Hello STx " {
		t.Errorf("emitted %q, final %q", out, s.final())
	}
	s = newStopper(nil)
	if e, stop := s.add("a\n\nb"); e != "a\n\nb" || stop {
		t.Errorf("no stop strings: %q %v", e, stop)
	}
	s = newStopper([]string{"END"})
	s.add("abE")
	if f := s.flush(); f != "E" || s.final() != "abE" {
		t.Errorf("held-back text flushed at the end: %q", f)
	}
}

func TestOptionErrors(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{MaxNewTokens: 0}, "max new tokens 0"},
		{Options{MaxNewTokens: 9000}, "max new tokens 9000"},
		{Options{MaxNewTokens: 1, TopP: 1.5}, "top-p 1.5"},
		{Options{MaxNewTokens: 1, Temperature: -1}, "temperature -1"},
		{Options{MaxNewTokens: 1, FrequencyPenalty: 3}, "frequency penalty 3"},
		{Options{MaxNewTokens: 1, PresencePenalty: -2.5}, "presence penalty -2.5"},
		// NaN passes every ordered comparison: each field must refuse it.
		{Options{MaxNewTokens: 1, Temperature: nan}, "temperature must be a finite number"},
		{Options{MaxNewTokens: 1, Temperature: inf}, "temperature must be a finite number"},
		{Options{MaxNewTokens: 1, TopP: nan}, "top-p must be a finite number"},
		{Options{MaxNewTokens: 1, MinP: nan}, "min-p must be a finite number"},
		{Options{MaxNewTokens: 1, RepetitionPenalty: nan}, "repetition penalty must be a finite number"},
		{Options{MaxNewTokens: 1, RepetitionPenalty: -1}, "repetition penalty -1"},
		{Options{MaxNewTokens: 1, FrequencyPenalty: nan}, "frequency penalty must be a finite number"},
		{Options{MaxNewTokens: 1, PresencePenalty: math.Inf(-1)}, "presence penalty must be a finite number"},
		{Options{MaxNewTokens: 1, TopK: -1}, "top-k -1"},
		{Options{MaxNewTokens: 1, Logprobs: true, TopLogprobs: 21}, "top logprobs 21"},
		{Options{MaxNewTokens: 1, TopLogprobs: -1}, "top logprobs -1"},
		{Options{MaxNewTokens: 1, TopLogprobs: 2}, "need logprobs on"},
		{Options{MaxNewTokens: 1, StopStrings: []string{""}}, "stop string 0 is 0 bytes"},
		{Options{MaxNewTokens: 1, StopStrings: []string{strings.Repeat("x", 513)}}, "stop string 0 is 513 bytes"},
		{Options{MaxNewTokens: 1, StopStrings: make([]string, 17)}, "17 stop strings"},
	} {
		if err := c.o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	// The zero value of every sampling field is valid and means off.
	if err := (&Options{MaxNewTokens: 1}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	_, s, _, _ := prompt(t, "tiny-medgemma-text", 64)
	s.Reset()
	long := make([]int32, s.Capacity())
	if _, err := Prefill(context.Background(), s, &model.Prompt{IDs: long}, 64); err == nil || !strings.Contains(err.Error(), "prompt is longer than the context") {
		t.Errorf("long prompt: %v", err)
	}
}

// TestRunAllocationsPerToken generates 8 and then 72 tokens from the same
// state: the difference in allocations must not grow with the tokens (only
// the result's slices and text grow, by doubling).
func TestRunAllocationsPerToken(t *testing.T) {
	tok := testtok.Gemma3(t)
	m, _, g, _ := prompt(t, "tiny-medgemma-text", 64)
	s, err := m.NewSession(len(g.InputIDs)+80, 64)
	if err != nil {
		t.Fatal(err)
	}
	last, err := Prefill(context.Background(), s, &model.Prompt{IDs: g.InputIDs}, 64)
	if err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	h := append([]float32(nil), last...)
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(3, func() {
			s.Restore(snap)
			o := Options{MaxNewTokens: n}
			res, err := Run(context.Background(), s, tok, h, g.InputIDs, o, Output{Text: func(string) error { return nil }})
			if err != nil || len(res.Tokens) != n {
				t.Fatalf("%d tokens: %v", len(res.Tokens), err)
			}
		})
	}
	few, many := allocs(8), allocs(72)
	t.Logf("allocations: %.0f for 8 tokens, %.0f for 72", few, many)
	// The result's slices and text grow by doubling; the sequence's block
	// hashes grow by one entry per block of 16 tokens.
	if many-few > 12+64/16 {
		t.Errorf("64 more tokens cost %.0f more allocations; want only the result's and the block hashes' growth (at most 16)", many-few)
	}
}

// TestPrefillCancelled: a context cancelled after the first chunk stops the
// prefill before the second (within one layer), with the context's error.
func TestPrefillCancelled(t *testing.T) {
	_, s, g, _ := prompt(t, "tiny-medgemma-text", 64)
	s.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	var seen []int
	_, err := Prefill(ctx, s, &model.Prompt{IDs: g.InputIDs}, 64, func(done, total int) {
		seen = append(seen, done)
		cancel()
	})
	if !errors.Is(err, context.Canceled) || !slices.Equal(seen, []int{64}) || s.Pos() != 64 {
		t.Errorf("cancelled prefill: %v, progress %v, session at %d", err, seen, s.Pos())
	}
}

// TestPrefillLogprobs scores both tiny prompts (the multimodal one with its
// image) in chunks of 64 and 7: each position's top-5 alternatives and, where
// it is among transformers' top 10, the next token's logprob equal
// transformers' (logit minus logsumexp at that position).
func TestPrefillLogprobs(t *testing.T) {
	tok := testtok.Gemma3(t)
	for _, name := range []string{"tiny-medgemma-text", "tiny-medgemma"} {
		for _, chunk := range []int{64, 7} {
			m, s, g, _ := prompt(t, name, 64)
			s.Reset()
			p := &model.Prompt{IDs: g.InputIDs}
			if m.HasVision() {
				px, err := npy.ReadFile(filepath.Join(tinyDir(name), "pixel_values.f32.npy"))
				if err != nil {
					t.Fatal(err)
				}
				p.TokenTypeIDs = g.TokenTypeIDs
				p.Image = func(ctx context.Context, i int) ([]float32, error) { return m.EncodeImage(ctx, px.Data, nil) }
			}
			scores, last, err := PrefillLogprobs(context.Background(), s, tok, p, chunk, 5)
			if err != nil {
				t.Fatal(err)
			}
			if len(scores) != len(g.InputIDs)-1 || len(last) != m.Config.Text.HiddenSize || s.Pos() != len(g.InputIDs) {
				t.Fatalf("%s: %d scores for %d tokens", name, len(scores), len(g.InputIDs))
			}
			whole, err := m.NewSession(len(g.InputIDs)+1, len(g.InputIDs))
			if err != nil {
				t.Fatal(err)
			}
			in, err := p.Input(context.Background(), 0, len(g.InputIDs), m.Config.Text.HiddenSize, nil)
			if err != nil {
				t.Fatal(err)
			}
			hidden, err := whole.Forward(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i, sc := range scores {
				lse := g.LogSumExp[i]
				if sc.Token != g.InputIDs[i+1] || len(sc.Top) != 5 {
					t.Fatalf("%s position %d: token %d with %d alternatives", name, i, sc.Token, len(sc.Top))
				}
				for k, a := range sc.Top {
					// Ties within float noise may swap ids; the logprob
					// at each rank must still match.
					want := g.Top10Logits[i][k] - lse
					if a.Token != g.Top10IDs[i][k] && math.Abs(float64(a.Logprob)-want) > 1e-4 {
						t.Errorf("%s position %d alternative %d: %d (%v), want %d (%v)", name, i, k, a.Token, a.Logprob, g.Top10IDs[i][k], want)
					}
					worst = max(worst, math.Abs(float64(a.Logprob)-want))
				}
				// The next token (never in the random model's top 10):
				// its logit from a forward of the whole prompt in one chunk.
				logits := make([]float32, m.Config.Text.VocabSize)
				h := m.Config.Text.HiddenSize
				whole.Logits(logits, hidden[i*h:(i+1)*h])
				worst = max(worst, math.Abs(float64(sc.Logprob)-(float64(logits[sc.Token])-lse)))
			}
			if worst > 1e-4 {
				t.Errorf("%s chunk %d: logprobs off by %.3g", name, chunk, worst)
			}
		}
	}
}
