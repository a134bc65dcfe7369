package generate

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/grammar"
	"github.com/medgemma/medgemma/internal/testenv"
	"github.com/medgemma/medgemma/internal/testtok"
)

// testSchema is a small clinical schema: an enum, a bounded integer, a
// list of strings, a boolean.
const testSchema = `{"type":"object","properties":{"severity":{"enum":["mild","moderate","severe"]},"score":{"type":"integer","minimum":0,"maximum":10},"findings":{"type":"array","items":{"type":"string","maxLength":12},"maxItems":3},"urgent":{"type":"boolean"}},"required":["severity","score","findings","urgent"],"additionalProperties":false}`

// structural favours tokens that close and separate JSON, so that random
// logits make documents that end.
func structural(tok []byte) bool { return bytes.ContainsAny(tok, "\"}],:0123456789tfn") }

// TestGenerationGrammar: with random logits in place of a model, a
// constrained generation's every answer ending in "stop" is in the
// grammar's language, and one cut by the length is a prefix of it; the
// logprobs are those of the constrained distribution (the sampled token's
// and its alternatives' all allowed, summing to one); stop tokens end an
// answer only where the grammar may end.
func TestGenerationGrammar(t *testing.T) {
	tok := testtok.Gemma3(t)
	v := VocabOf(tok)
	const vocab = 262208 // the model's logits are wider than the tokenizer
	var biased []int32
	for id := range tok.Len() {
		if b := v.Token(int32(id)); b != nil && structural(b) {
			biased = append(biased, int32(id))
		}
	}
	gs := map[string]*grammar.Grammar{"json_object": grammar.JSONObject()}
	if g, err := grammar.FromJSONSchema([]byte(testSchema)); err == nil {
		gs["schema"] = g
	} else {
		t.Fatal(err)
	}
	stops := []int32{1, 106}
	rng := rand.New(rand.NewPCG(11, 12))
	// Noise for the logits: windows of one table at random offsets.
	noise := make([]float32, 2*vocab)
	for i := range noise {
		noise[i] = float32(rng.NormFloat64()) * 2
	}
	counts := map[string]int{}
	for name, g := range gs {
		c, err := g.Compile()
		if err != nil {
			t.Fatal(err)
		}
		runs := 6
		if testenv.Race {
			runs = 1 // scripts/test.sh runs this test once more, plain, with all
		}
		for run := range runs {
			// Greedy, sampling with MedGemma's top-k, and (once in four)
			// sampling over the whole vocabulary.
			topK := 64
			if run%4 == 1 {
				topK = 0
			}
			o := Options{MaxNewTokens: 100, Temperature: float64(run % 2), TopK: topK, Seed: uint64(run), HasSeed: true, StopTokens: stops,
				Logprobs: true, TopLogprobs: 5, Grammar: c}
			if run >= 2 {
				o.Logprobs, o.TopLogprobs = false, 0
			}
			gen, err := NewGeneration(o, tok, vocab, nil, 1000)
			if err != nil {
				t.Fatal(err)
			}
			logits := make([]float32, vocab)
			var text strings.Builder
			for {
				copy(logits, noise[rng.IntN(vocab):])
				for _, id := range biased {
					logits[id] += 4
				}
				logits[stops[0]] += 8 // the model would end where it can
				var before []float32
				if gen.Tokens() < 3 {
					before = append(before, logits...)
				}
				id, st, piece, done := gen.Step(logits)
				for i := range before {
					if logits[i] != before[i] {
						t.Fatal("Step changed the caller's logits")
					}
				}
				text.WriteString(piece)
				if o.Logprobs {
					checkConstrainedLogprobs(t, st, id)
				}
				if done {
					break
				}
			}
			text.WriteString(gen.End(""))
			res := gen.Result()
			if gen.Err() != nil {
				t.Fatal(gen.Err())
			}
			if res.Text != text.String() {
				t.Fatalf("streamed %q, result %q", text.String(), res.Text)
			}
			counts[name+" "+res.FinishReason]++
			m := c.NewMatcher()
			if !m.Advance([]byte(res.Text)) {
				t.Fatalf("%s: %q is outside the grammar", name, res.Text)
			}
			if res.FinishReason == FinishStop {
				if !m.Done() || !json.Valid([]byte(res.Text)) {
					t.Fatalf("%s: %q ended (stop) but is incomplete", name, res.Text)
				}
			}
		}
	}
	if !testenv.Race && (counts["schema stop"] < 3 || counts["json_object stop"] < 1) {
		t.Fatalf("too few complete answers: %v", counts)
	}
	t.Log(counts)
}

// checkConstrainedLogprobs: the step's logprobs form a distribution over
// the allowed tokens (the sampled one included, finite), best first.
func checkConstrainedLogprobs(t *testing.T, st StepLogprobs, id int32) {
	t.Helper()
	if st.Token != id || math.IsInf(float64(st.Logprob), 0) || math.IsNaN(float64(st.Logprob)) || st.Logprob > 0 {
		t.Fatalf("token %d logprob %v", id, st.Logprob)
	}
	var sum float64
	for i, a := range st.Top {
		if math.IsInf(float64(a.Logprob), -1) {
			if i == 0 {
				t.Fatal("the best alternative is not allowed")
			}
			continue
		}
		sum += math.Exp(float64(a.Logprob))
	}
	if sum > 1+1e-4 {
		t.Fatalf("the top alternatives' probabilities sum to %v", sum)
	}
}

// TestGrammarAfterThought: with thought markers, a thought the answer
// opens with runs free (any token, but no stop token: the answer must
// come), and the grammar constrains what follows it; without a thought the
// grammar applies from the first token.
func TestGrammarAfterThought(t *testing.T) {
	tok := testtok.Gemma3(t)
	start, ok1 := tok.ID("<unused94>")
	end, ok2 := tok.ID("<unused95>")
	if !ok1 || !ok2 {
		t.Fatal("no thought markers in the vocabulary")
	}
	g, err := grammar.ParseGBNF(`root ::= "yes" | "no"`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Compile()
	if err != nil {
		t.Fatal(err)
	}
	hello := tok.Encode("hello", false)[0]
	yes := tok.Encode("yes", false)[0]
	stop := int32(106)
	step := func(gen *Generation, favour map[int32]float32) (int32, bool) {
		logits := make([]float32, tok.Len())
		for id, v := range favour {
			logits[id] = v
		}
		id, _, _, done := gen.Step(logits)
		if gen.Err() != nil {
			t.Fatal(gen.Err())
		}
		return id, done
	}
	o := Options{MaxNewTokens: 20, StopTokens: []int32{stop}, Grammar: c, Thought: []int32{start, end}}
	gen, err := NewGeneration(o, tok, tok.Len(), nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		favour map[int32]float32
		id     int32
	}{
		{map[int32]float32{start: 10, hello: 5}, start},       // the thought opens
		{map[int32]float32{stop: 20, hello: 10}, hello},       // free inside, but no stop
		{map[int32]float32{end: 10, hello: 5}, end},           // the thought closes
		{map[int32]float32{hello: 10, stop: 20, yes: 1}, yes}, // the grammar again
	} {
		id, done := step(gen, want.favour)
		if id != want.id || done != (i == 3) {
			t.Fatalf("step %d: token %d (done %v), want %d", i, id, done, want.id)
		}
	}
	gen.End("")
	if r := gen.Result(); r.FinishReason != FinishStop || !strings.HasSuffix(r.Text, "yes") {
		t.Fatalf("%q, %s", r.Text, r.FinishReason)
	}
	// No thought: the grammar from the first token.
	gen, err = NewGeneration(o, tok, tok.Len(), nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := step(gen, map[int32]float32{hello: 10, yes: 1}); id != yes {
		t.Fatalf("first token %d, want %d (yes)", id, yes)
	}
}

// BenchmarkConstrainedStep is the cost a grammar adds to a decode step on
// the real vocabulary: Step over a whole answer (the logits favour its
// next token), with the schema's grammar (new: its masks computed as they
// are first needed; cached: a grammar that served a request before) and
// without. Reported per token.
func BenchmarkConstrainedStep(b *testing.B) {
	tok := testtok.Gemma3(b)
	answer := `{"severity": "moderate", "score": 7, "findings": ["RLL opacity", "effusion"], "urgent": false}`
	ids := tok.Encode(answer, false)
	const vocab = 262208
	logits := make([]float32, vocab)
	run := func(b *testing.B, c *grammar.Compiled) {
		o := Options{MaxNewTokens: 500, StopTokens: []int32{1, 106}, Grammar: c}
		gen, err := NewGeneration(o, tok, vocab, nil, 1000)
		if err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			logits[id] = 30
			got, _, _, _ := gen.Step(logits)
			logits[id] = 0
			if got != id {
				b.Fatalf("token %d, want %d", got, id)
			}
		}
	}
	compile := func(b *testing.B) *grammar.Compiled {
		g, err := grammar.FromJSONSchema([]byte(testSchema))
		if err != nil {
			b.Fatal(err)
		}
		c, err := g.Compile()
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	VocabOf(tok)
	perToken := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*len(ids)), "ms/token")
	}
	b.Run("none", func(b *testing.B) {
		for b.Loop() {
			run(b, nil)
		}
		perToken(b)
	})
	b.Run("new", func(b *testing.B) {
		for b.Loop() {
			run(b, compile(b))
		}
		perToken(b)
	})
	b.Run("cached", func(b *testing.B) {
		c := compile(b)
		run(b, c)
		for b.Loop() {
			run(b, c)
		}
		perToken(b)
	})
}

// TestGrammarPastItsLimits: a grammar whose matches multiply past the
// matcher's limits ends the generation with an error (ErrGrammar, finish
// reason "error"), no token made up for it.
func TestGrammarPastItsLimits(t *testing.T) {
	tok := testtok.Gemma3(t)
	g, err := grammar.ParseGBNF("root ::= x\nx ::= \"a\" y | \"a\" z | \"\"\ny ::= x\nz ::= x \"b\"")
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Compile()
	if err != nil {
		t.Fatal(err)
	}
	gen, err := NewGeneration(Options{MaxNewTokens: 100, Grammar: c}, tok, tok.Len(), nil, 200)
	if err != nil {
		t.Fatal(err)
	}
	a := tok.Encode("a", false)[0]
	logits := make([]float32, tok.Len())
	logits[a] = 10
	for i := range 100 {
		id, _, _, done := gen.Step(logits)
		if !done {
			if id != a {
				t.Fatalf("step %d: token %d", i, id)
			}
			continue
		}
		if !errors.Is(gen.Err(), grammar.ErrGrammar) || gen.Result().FinishReason != FinishError || id != -1 && id != a {
			t.Fatalf("ended at step %d: token %d, error %v, finish %q", i, id, gen.Err(), gen.Result().FinishReason)
		}
		return
	}
	t.Fatal("100 steps without reaching the limits")
}
