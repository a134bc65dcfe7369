package medgemma

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/internal/testenv"
)

var pplDir = filepath.Join("testdata", "gguf", "small-gemma3")

// loadSmallGGUF loads a small-gemma3 file. Its vocabulary (4096 pieces,
// all scored 0) makes no tokenizer, so Gemma's stands in: these tests take
// their token ids from llama.cpp's file, not from text.
func loadSmallGGUF(t testing.TB, kind string) *Model {
	t.Helper()
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	m, err := Load(context.Background(), filepath.Join(pplDir, "small-gemma3-"+kind+".gguf"), LoadOptions{Tokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func readBase(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pplDir, "perplexity", "base.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPerplexityAgainstLlamaCpp: against llama-perplexity's own
// log-probability file (Q8_0 base; testdata/gguf/README.md), the Q4_K_M
// file gives what llama.cpp printed: the base's PPL computed from the
// file alone exactly, the model's PPL within the two engines' rounding,
// the same top token everywhere, a KL divergence of the same size. And
// evaluating the Q8_0 model with --save-logits writes llama.cpp's file:
// the same header and tokens, rows within the engines' rounding.
func TestPerplexityAgainstLlamaCpp(t *testing.T) {
	base := readBase(t)
	m := loadSmallGGUF(t, "Q4_K_M")
	var chunks int
	res, err := m.Perplexity(context.Background(), nil, PerplexityOptions{KLBase: bytes.NewReader(base), OnChunk: func(r *PerplexityResult) { chunks = r.Chunks }})
	if err != nil {
		t.Fatal(err)
	}
	k := res.KL
	t.Logf("PPL(Q) %.6f (llama.cpp 2697507714.049746), PPL(base) %.6f, KLD %.6f, same top %.3f", res.PPL, k.BasePPL, k.KLDMean, k.SameTop)
	if res.Context != 64 || res.Chunks != 4 || chunks != 4 || res.Scored != 4*31 {
		t.Fatalf("context %d, %d chunks (%d seen), %d scored; the file has 4 chunks of 64, 31 scored each", res.Context, res.Chunks, chunks, res.Scored)
	}
	if math.Abs(k.BasePPL/8090633.545517-1) > 1e-9 {
		t.Errorf("PPL(base) %.6f, llama.cpp 8090633.545517", k.BasePPL)
	}
	if d := math.Abs(math.Log(res.PPL) - math.Log(2697507714.049746)); d > 0.05 {
		t.Errorf("ln PPL(Q) differs from llama.cpp's by %.4f", d)
	}
	if k.SameTop != 1 || !(k.KLDMean < 1e-4) || len(k.KLDPercentiles) != 11 || len(k.DeltaPPercentiles) != 13 {
		t.Errorf("same top %v, KLD %v, percentiles %d and %d", k.SameTop, k.KLDMean, len(k.KLDPercentiles), len(k.DeltaPPercentiles))
	}

	// Our file for the base model: llama.cpp's header and tokens.
	h, err := readLogitsHeader(bytes.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	var saved bytes.Buffer
	q8 := loadSmallGGUF(t, "Q8_0")
	own, err := q8.Perplexity(context.Background(), h.tokens, PerplexityOptions{Context: 64, SaveLogits: &saved})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Q8_0 PPL %.4f (llama.cpp 2671744048.6072)", own.PPL)
	if d := math.Abs(math.Log(own.PPL) - math.Log(2671744048.6072)); d > 0.05 {
		t.Errorf("ln PPL differs from llama.cpp's by %.4f", d)
	}
	head := 20 + 4*len(h.tokens)
	if saved.Len() != len(base) || !bytes.Equal(saved.Bytes()[:head], base[:head]) {
		t.Fatalf("file of %d bytes, llama.cpp's %d; headers equal: %v", saved.Len(), len(base), bytes.Equal(saved.Bytes()[:min(head, saved.Len())], base[:head]))
	}
	ours, theirs := make([]uint16, h.rowLen()), make([]uint16, h.rowLen())
	ro, rt := logitsRowIO{r: bufioReader(saved.Bytes()[head:])}, logitsRowIO{r: bufioReader(base[head:])}
	var worst float64
	for range 4 * 31 {
		if err := ro.read(ours); err != nil {
			t.Fatal(err)
		}
		if err := rt.read(theirs); err != nil {
			t.Fatal(err)
		}
		a, b := decodeLogProbRow(ours, h.vocab), decodeLogProbRow(theirs, h.vocab)
		for i := range h.vocab {
			if la, lb := a.at(i), b.at(i); la > b.min && lb > b.min {
				worst = max(worst, math.Abs(float64(la-lb)))
			}
		}
	}
	t.Logf("saved log-probabilities within %.4f of llama.cpp's (where both are above the floor)", worst)
	if worst > 0.5 {
		t.Errorf("saved log-probabilities differ from llama.cpp's by up to %.4f", worst)
	}
}

// TestPerplexityChunks: the PPL is what scoring each chunk (its first
// token made <bos>) through Complete's echo gives for its second half, and
// a run against its own saved file finds no divergence.
func TestPerplexityChunks(t *testing.T) {
	m := loadSmallGGUF(t, "Q8_0")
	h, err := readLogitsHeader(bytes.NewReader(readBase(t)))
	if err != nil {
		t.Fatal(err)
	}
	ids := h.tokens // llama.cpp's tokens of text.txt
	const n = 48
	var saved bytes.Buffer
	res, err := m.Perplexity(context.Background(), ids, PerplexityOptions{Context: n, Chunks: 3, SaveLogits: &saved})
	if err != nil {
		t.Fatal(err)
	}
	var nll float64
	for c := range 3 {
		chunk := append([]int32{ids[0]}, ids[c*n+1:(c+1)*n]...)
		o := m.Defaults()
		o.MaxNewTokens, o.Logprobs = 0, true
		r, err := m.Complete(context.Background(), chunk, CompleteOptions{Generate: o, Echo: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range r.PromptLogprobs[n/2:] { // entry i scores token i+1
			nll -= float64(st.Logprob)
		}
	}
	want := math.Exp(nll / float64(3*(n-1-n/2)))
	if res.Scored != 3*(n-1-n/2) || math.Abs(math.Log(res.PPL/want)) > 1e-5 {
		t.Fatalf("PPL %v over %d tokens; chunk by chunk through Complete %v", res.PPL, res.Scored, want)
	}
	self, err := m.Perplexity(context.Background(), nil, PerplexityOptions{KLBase: &saved})
	if err != nil {
		t.Fatal(err)
	}
	if k := self.KL; k.SameTop != 1 || math.Abs(k.KLDMean) > 1e-6 || math.Abs(k.DeltaPMean) > 1e-6 || math.Abs(self.PPL/res.PPL-1) > 1e-6 {
		t.Fatalf("against itself: same top %v, KLD %v, Δp %v, PPL %v then %v", k.SameTop, k.KLDMean, k.DeltaPMean, res.PPL, self.PPL)
	}
	if _, err := m.Perplexity(context.Background(), ids[:2*n-1], PerplexityOptions{Context: n}); !errors.Is(err, ErrTextTooShort) {
		t.Fatalf("a text of less than two chunks: %v", err)
	}
}

// TestLogitsFileHostile: broken or lying log-probability files are refused
// with an error naming what is wrong, before anything is sized by them.
func TestLogitsFileHostile(t *testing.T) {
	base := readBase(t)
	m := loadSmallGGUF(t, "Q8_0")
	set := func(off int, v uint32) []byte {
		b := bytes.Clone(base)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	for _, c := range []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "header"},
		{"magic", append([]byte("_logitz_"), base[8:]...), "does not start"},
		{"context", set(8, 1<<30), "context"},
		{"vocabulary", set(12, 4095), "vocabulary of 4095"},
		{"chunks", set(16, 1<<30), "chunks"},
		{"token", set(20+4*7, 4096), "outside the vocabulary"},
		{"tokens cut", base[:20+4*100], "token 100 of 256"},
		{"rows cut", base[:len(base)-10], "chunk 3"},
	} {
		_, err := m.Perplexity(context.Background(), nil, PerplexityOptions{KLBase: bytes.NewReader(c.file)})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// FuzzLogitsHeader: any bytes give a header within its limits or an
// error, never a panic or an allocation beyond what was read.
func FuzzLogitsHeader(f *testing.F) {
	base, err := os.ReadFile(filepath.Join(pplDir, "perplexity", "base.bin"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(base[:20+4*256])
	f.Add([]byte("_logits_\x40\x00\x00\x00\x00\x10\x00\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := readLogitsHeader(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(h.tokens) != h.ctx*h.chunks || 20+4*len(h.tokens) > len(b) {
			t.Fatalf("header of %d tokens (%d x %d) from %d bytes", len(h.tokens), h.ctx, h.chunks, len(b))
		}
	})
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
