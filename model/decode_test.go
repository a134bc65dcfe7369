package model

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/safetensors"
)

// feed runs the prompt through a fresh session in the given chunk sizes and
// checks the final-normed hidden state at every position (the logits are a
// linear map of it) against the full forward of transformers, and the logits
// at the end of each chunk (every 16th position for one-token chunks) against
// the golden top-10.
func feed(t *testing.T, m *Model, name string, g *golden, features []float32, chunks []int) *Session {
	t.Helper()
	n := len(g.InputIDs)
	h := m.Config.Text.HiddenSize
	s, err := m.NewSession(n+len(g.GreedyNewIDs)+8, 64)
	if err != nil {
		t.Fatal(err)
	}
	p := goldenPrompt(g, features)
	final := loadNpy(t, name, "final_norm.f32.npy").Data
	logits := make([]float32, m.Config.Text.VocabSize)
	pos := 0
	for _, c := range chunks {
		in, err := p.Input(context.Background(), pos, pos+c, h, nil)
		if err != nil {
			t.Fatal(err)
		}
		hidden, err := s.Forward(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if e := relErr(hidden[:c*h], final[pos*h:(pos+c)*h]); e > 1e-4 {
			t.Errorf("%s chunks %v, positions %d..%d: final norm relative error %.3g", name, chunks, pos, pos+c-1, e)
		}
		last := pos + c - 1
		if c == 1 && last != n-1 && last%16 != 0 {
			pos += c
			continue // the hidden state was checked; logits for a sample of positions
		}
		s.Logits(logits, hidden[(c-1)*h:c*h])
		if e := checkLogits(t, fmt.Sprintf("%s chunks %v position %d", name, chunks, last), logits, g.Top10IDs[last], g.Top10Logits[last], g.LogSumExp[last]); e > 1e-4 {
			t.Errorf("%s chunks %v position %d: relative error %.3g", name, chunks, last, e)
		}
		pos += c
	}
	if pos != n {
		t.Fatalf("chunks cover %d of %d tokens", pos, n)
	}
	return s
}

func ones(n int) []int {
	c := make([]int, n)
	for i := range c {
		c[i] = 1
	}
	return c
}

func loadTiny(t *testing.T, name string) (*Model, *golden, []float32) {
	t.Helper()
	m, err := Load(tinyDir(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	g := loadGolden(t, name)
	var features []float32
	if m.HasVision() {
		if features, err = m.EncodeImage(context.Background(), loadNpy(t, name, "pixel_values.f32.npy").Data, nil); err != nil {
			t.Fatal(err)
		}
	}
	return m, g, features
}

// TestSplitPrefill prefills the first K tokens, then feeds the rest through
// the cache one at a time (an image block as one chunk), for K below and
// above the sliding window.
func TestSplitPrefill(t *testing.T) {
	m, g, _ := loadTiny(t, "tiny-medgemma-text") // 263 tokens, window 32
	for _, k := range []int{5, 31, 32, 33, 64} {
		feed(t, m, "tiny-medgemma-text", g, nil, append([]int{k}, ones(len(g.InputIDs)-k)...))
	}
	feed(t, m, "tiny-medgemma-text", g, nil, []int{64, 64, 64, 64, 7})
	mm, gm, features := loadTiny(t, "tiny-medgemma") // 42 tokens, image at 19..34, window 8
	for _, chunks := range [][]int{
		append(append(append([]int{5}, ones(14)...), 16), ones(7)...), // below the window, the image as one chunk
		append([]int{36}, ones(6)...),                                 // above it
		{19, 16, 7},
	} {
		feed(t, mm, "tiny-medgemma", gm, features, chunks)
	}
}

// TestGreedyDecoding generates with the cache and checks every step's ids,
// top-10 logits and logsumexp against transformers' generate.
func TestGreedyDecoding(t *testing.T) {
	for _, name := range []string{"tiny-medgemma-text", "tiny-medgemma"} {
		m, g, features := loadTiny(t, name)
		n := len(g.InputIDs)
		s, err := m.NewSession(n+len(g.GreedyNewIDs)+1, n)
		if err != nil {
			t.Fatal(err)
		}
		h := m.Config.Text.HiddenSize
		in := promptInput(t, g, features, h)
		hidden, err := s.Forward(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		last := hidden[(n-1)*h : n*h]
		logits := make([]float32, m.Config.Text.VocabSize)
		worst := 0.0
		for step, want := range g.GreedyNewIDs {
			s.Logits(logits, last)
			top := g.GreedyStepTop10[step]
			ids := make([]int32, len(top[0]))
			for i, v := range top[0] {
				ids[i] = int32(v)
			}
			worst = max(worst, checkLogits(t, fmt.Sprintf("%s step %d", name, step), logits, ids, top[1], g.GreedyStepLogSumExp[step]))
			if got := topK(logits, 1)[0]; got != want {
				t.Fatalf("%s step %d: greedy id %d, want %d", name, step, got, want)
			}
			out, err := s.Forward(context.Background(), Input{IDs: []int32{want}})
			if err != nil {
				t.Fatal(err)
			}
			last = out
		}
		t.Logf("%s: %d greedy steps, worst relative error %.2g", name, len(g.GreedyNewIDs), worst)
		if worst > 1e-4 {
			t.Errorf("%s: greedy step logits relative error %.3g", name, worst)
		}
	}
}

// TestDecodeAllocatesNothing checks that a decode step (one token through the
// cache, then its logits) allocates nothing.
func TestDecodeAllocatesNothing(t *testing.T) {
	m, g, _ := loadTiny(t, "tiny-medgemma-text")
	s, err := m.NewSession(512, 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Forward(context.Background(), Input{IDs: g.InputIDs[:40]}); err != nil {
		t.Fatal(err)
	}
	logits := make([]float32, m.Config.Text.VocabSize)
	ids := []int32{g.InputIDs[40]}
	in := Input{IDs: ids}
	step := func() {
		hidden, err := s.Forward(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		s.Logits(logits, hidden)
	}
	step()
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Errorf("a decode step allocates %v times", n)
	}
}

func TestImageBlockMustNotBeSplit(t *testing.T) {
	m, g, features := loadTiny(t, "tiny-medgemma")
	s, err := m.NewSession(64, 64)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Config.Text.HiddenSize
	p := goldenPrompt(g, features)
	if sp := ImageSpans(g.TokenTypeIDs); len(sp) != 1 || sp[0] != (Span{19, 35}) {
		t.Fatalf("image spans %v, want [{19 35}]", sp)
	}
	// Prompt.Input refuses a range that cuts the image, and the chunking
	// moves the end of a chunk past it.
	for _, r := range [][2]int{{0, 25}, {25, 42}, {20, 35}} {
		if _, err := p.Input(context.Background(), r[0], r[1], h, nil); err == nil || !strings.Contains(err.Error(), "must be in one chunk") {
			t.Errorf("range %v: %v", r, err)
		}
	}
	if end := p.ChunkEnd(0, 25); end != 35 {
		t.Errorf("a chunk of 25 ends at %d, want 35 (the image's end)", end)
	}
	if end := p.ChunkEnd(0, 19); end != 19 {
		t.Errorf("a chunk of 19 ends at %d, want 19", end)
	}
	// Forward refuses an image group continued from the previous chunk.
	all := promptInput(t, g, features, h)
	if _, err := s.Forward(context.Background(), Input{IDs: all.IDs[:25], Groups: all.Groups[:25], Replace: all.Replace[:25], Embeds: all.Embeds[:25*h]}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Forward(context.Background(), Input{IDs: all.IDs[25:30], Groups: all.Groups[25:30], Replace: all.Replace[25:30], Embeds: all.Embeds[25*h : 30*h]})
	if err == nil || !strings.Contains(err.Error(), "must be in one chunk") {
		t.Errorf("split image block: %v", err)
	}
}

// TestStoredLMHead uses lm_head.weight when the checkpoint has one instead of
// the embedding matrix.
func TestStoredLMHead(t *testing.T) {
	cfgJSON, err := os.ReadFile(filepath.Join(tinyDir("tiny-medgemma-text"), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, _ := ParseConfig(cfgJSON)
	var ts []safetensors.WriteTensor
	for _, spec := range cfg.Tensors() {
		data := make([]byte, 2*spec.Elements())
		for i := 0; i < len(data); i += 2 {
			data[i+1] = 0x3c // bf16 0.0078125
		}
		ts = append(ts, safetensors.WriteTensor{Name: spec.Name, DType: safetensors.BF16, Shape: spec.Shape, Data: data})
	}
	// An all-zero LM head: every logit must be 0.
	ts = append(ts, safetensors.WriteTensor{Name: "lm_head.weight", DType: safetensors.BF16, Shape: []int{cfg.Text.VocabSize, cfg.Text.HiddenSize},
		Data: make([]byte, 2*cfg.Text.VocabSize*cfg.Text.HiddenSize)})
	os.WriteFile(filepath.Join(dir, "config.json"), cfgJSON, 0o644)
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, _ := m.NewSession(8, 8)
	hidden, err := s.Forward(context.Background(), Input{IDs: []int32{2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	logits := make([]float32, cfg.Text.VocabSize)
	s.Logits(logits, hidden[cfg.Text.HiddenSize:])
	for i, v := range logits {
		if v != 0 {
			t.Fatalf("logit %d = %v with a zero lm_head", i, v)
		}
	}
	tied, _ := Load(tinyDir("tiny-medgemma-text"))
	defer tied.Close()
	if tied.text.lmHead.Raw == nil || &tied.text.lmHead.Raw[0] != &tied.text.embedTokens.Raw[0] {
		t.Error("without lm_head.weight the LM head is not the embedding matrix")
	}
}

// TestForwardCancelled: a cancelled context stops a forward pass between
// layers and the vision encoder before its next layer; the sequence is left
// as it was (its length unchanged), and the same chunk run again computes
// exactly what a session never cancelled computes.
func TestForwardCancelled(t *testing.T) {
	m, g, _ := loadTiny(t, "tiny-medgemma-text")
	h := m.Config.Text.HiddenSize
	s, _ := m.NewSession(128, 64)
	if _, err := s.Forward(context.Background(), Input{IDs: g.InputIDs[:10]}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	layers := 0
	s.Hook = func(name string, _ []float32, _ int) {
		if strings.HasPrefix(name, "layer.") {
			layers++
			if layers == 2 {
				cancel()
			}
		}
	}
	if _, err := s.Forward(ctx, Input{IDs: g.InputIDs[10:50]}); !errors.Is(err, context.Canceled) || layers != 2 || s.Pos() != 10 {
		t.Fatalf("cancelled forward: %v after %d layers, pos %d", err, layers, s.Pos())
	}
	s.Hook = nil
	got, err := s.Forward(context.Background(), Input{IDs: g.InputIDs[10:50]})
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := m.NewSession(128, 64)
	fresh.Forward(context.Background(), Input{IDs: g.InputIDs[:10]})
	want, err := fresh.Forward(context.Background(), Input{IDs: g.InputIDs[10:50]})
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(got[:40*h], want[:40*h]); e != 0 {
		t.Errorf("after a cancelled pass: relative difference %g from an uncancelled session", e)
	}

	mm, _, _ := loadTiny(t, "tiny-medgemma")
	done, stop := context.WithCancel(context.Background())
	stop()
	px := make([]float32, 3*mm.Config.Vision.ImageSize*mm.Config.Vision.ImageSize)
	if _, err := mm.EncodeImage(done, px, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("EncodeImage with a cancelled context: %v", err)
	}
}

// TestBatchedDecodeAllocatesNothing: a decode step of several sequences (a
// forward pass over one token of each, then their logits) allocates
// nothing, however many tokens and sequences.
func TestBatchedDecodeAllocatesNothing(t *testing.T) {
	m, g, _ := loadTiny(t, "tiny-medgemma-text")
	pool, err := m.NewKVPool(PoolOptions{FullBlocks: 256, SlidingBlocks: 256})
	if err != nil {
		t.Fatal(err)
	}
	const seqs = 6
	ws := m.NewWorkspace(64)
	chunks := make([]Chunk, seqs)
	for i := range chunks {
		chunks[i].KV = pool.NewSeq()
		if _, err := m.Forward(context.Background(), ws, []Chunk{{KV: chunks[i].KV, In: Input{IDs: g.InputIDs[:20+3*i]}}}); err != nil {
			t.Fatal(err)
		}
		chunks[i].In.IDs = []int32{g.InputIDs[40+i]}
	}
	h, v := m.Config.Text.HiddenSize, m.Config.Text.VocabSize
	logits := make([]float32, seqs*v)
	rows := make([]float32, seqs*h)
	step := func() {
		hidden, err := m.Forward(context.Background(), ws, chunks)
		if err != nil {
			t.Fatal(err)
		}
		copy(rows, hidden)
		m.Logits(logits, rows, seqs)
	}
	for range 40 { // past a few block boundaries, so blocks are taken while measured
		step()
	}
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Errorf("a decode step of %d sequences allocates %v times", seqs, n)
	}
}
