package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/internal/testenv"
)

// TestPerplexityCLI: against llama-perplexity's log-probability file the
// statistics print as llama.cpp prints them, with its base PPL; on a text,
// the running PPL per chunk, the final estimate, and --json the same
// numbers; a saved file read back finds no divergence.
func TestPerplexityCLI(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	root := filepath.Join("..", "..")
	small := filepath.Join(root, "testdata", "gguf", "small-gemma3")
	stdout, errs, code := runCLI(t, "", "perplexity", "-m", filepath.Join(small, "small-gemma3-Q4_K_M.gguf"), "--tokenizer", tok,
		"--kl-base", filepath.Join(small, "perplexity", "base.bin"), "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"chunk             PPL", "\n   4 ", "Mean PPL(base)                : 8090633.545517 ±", "Same top p: 100.000 ±", "Mean    KLD:   0.0000", "Maximum KLD:", "99.9%   Δp:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}

	model := filepath.Join(root, "testdata", "models", "tiny-medgemma-text")
	text := filepath.Join(small, "perplexity", "text.txt")
	saved := filepath.Join(t.TempDir(), "logits.bin")
	stdout, errs, code = runCLI(t, "", "perplexity", "-m", model, "--tokenizer", tok, "-f", text, "--ctx", "64", "--chunks", "3", "--save-logits", saved, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "[1]") || !strings.Contains(lines[0], ",[3]") || !strings.HasPrefix(lines[1], "Final estimate: PPL = ") {
		t.Fatalf("output:\n%s", stdout)
	}
	stdout, errs, code = runCLI(t, "", "perplexity", "-m", model, "--tokenizer", tok, "-f", text, "--ctx", "64", "--chunks", "3", "--json", "--quiet")
	var r struct {
		Chunks int     `json:"chunks"`
		Scored int     `json:"scored_tokens"`
		PPL    float64 `json:"ppl"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s", code, err, errs)
	}
	var printed, pm float64
	if _, err := fmt.Sscanf(lines[1], "Final estimate: PPL = %g +/- %g", &printed, &pm); err != nil {
		t.Fatal(err)
	}
	if r.Chunks != 3 || r.Scored != 3*31 || math.Abs(printed-r.PPL) > 5e-5*r.PPL+1e-4 {
		t.Fatalf("json %+v; text said %q", r, lines[1])
	}
	stdout, errs, code = runCLI(t, "", "perplexity", "-m", model, "--tokenizer", tok, "--kl-base", saved, "--quiet")
	if code != 0 || !strings.Contains(stdout, "Same top p: 100.000") || !regexp.MustCompile(`Mean    KLD: +-?0\.000000 `).MatchString(stdout) {
		t.Fatalf("against its own file: exit %d %s\n%s", code, errs, stdout)
	}
	for _, c := range [][]string{
		{"perplexity", "-m", model},
		{"perplexity", "-m", model, "-f", text, "--kl-base", saved},
		{"perplexity", "-m", model, "-f", text, "--ctx", "2"},
		{"perplexity", "-m", model, "--kl-base", saved, "--save-logits", saved},
	} {
		if _, errs, code := runCLI(t, "", c...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage): %s", c, code, errs)
		}
	}
}

// TestScoreCLI: each line's ids (the text with <bos>, or ids as given),
// a null then a log-probability per token, the alternatives best first
// with the actual token among them at its own log-probability; the same
// ids scored as text or as ids give the same numbers; bad lines are named.
func TestScoreCLI(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	model := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma-text")
	in := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(in, []byte(`{"text": "The chest radiograph is normal."}`+"\n\n"+`{"ids": [2, 818, 15860]}`+"\n"), 0o644)
	stdout, errs, code := runCLI(t, "", "score", "-m", model, "--tokenizer", tok, "--input", in, "--top-logprobs", "3", "--json", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	type alt struct {
		Token   int32   `json:"token"`
		Text    string  `json:"text"`
		Logprob float32 `json:"logprob"`
	}
	type row struct {
		IDs         []int32    `json:"ids"`
		Logprobs    []*float32 `json:"logprobs"`
		TopLogprobs [][]alt    `json:"top_logprobs"`
	}
	var rows []row
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r row
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	if len(rows) != 2 || rows[0].IDs[0] != 2 || len(rows[1].IDs) != 3 {
		t.Fatalf("rows %+v", rows)
	}
	for i, r := range rows {
		if len(r.Logprobs) != len(r.IDs) || len(r.TopLogprobs) != len(r.IDs) || r.Logprobs[0] != nil || r.TopLogprobs[0] != nil {
			t.Fatalf("row %d: %d ids, %d logprobs, %d top lists; first %v %v", i, len(r.IDs), len(r.Logprobs), len(r.TopLogprobs), r.Logprobs[0], r.TopLogprobs[0])
		}
		for p := 1; p < len(r.IDs); p++ {
			lp, alts := *r.Logprobs[p], r.TopLogprobs[p]
			if len(alts) != 3 || lp > 0 || lp > alts[0].Logprob+1e-6 || alts[0].Logprob < alts[1].Logprob || alts[1].Logprob < alts[2].Logprob {
				t.Fatalf("row %d position %d: logprob %v, alternatives %+v", i, p, lp, alts)
			}
			for _, a := range alts {
				if a.Token == r.IDs[p] && a.Logprob != lp {
					t.Fatalf("row %d position %d: token %d at %v, among the alternatives at %v", i, p, a.Token, lp, a.Logprob)
				}
			}
		}
	}
	// The first line's ids, given as ids: the same numbers.
	ids, _ := json.Marshal(map[string][]int32{"ids": rows[0].IDs})
	stdout2, errs, code := runCLI(t, string(ids)+"\n", "score", "-m", model, "--tokenizer", tok, "--input", "-", "--top-logprobs", "3", "--json", "--quiet")
	if first := strings.SplitN(stdout, "\n", 2)[0]; code != 0 || strings.TrimSpace(stdout2) != first {
		t.Fatalf("exit %d %s: as ids\n%s\nas text\n%s", code, errs, stdout2, first)
	}
	stdout, _, code = runCLI(t, "", "score", "-m", model, "--tokenizer", tok, "--input", in, "--quiet")
	if code != 0 || !strings.Contains(stdout, "line 1: ") || !strings.Contains(stdout, "line 3: 3 tokens") || !strings.Contains(stdout, "total log-probability") {
		t.Fatalf("table: exit %d\n%s", code, stdout)
	}
	for _, c := range []struct{ line, want string }{
		{`{"text": "a", "ids": [2]}`, `in.jsonl:1: give "text" or "ids"`},
		{`{"txt": "a"}`, `in.jsonl:1: no "text" or "ids"`},
		{`{"ids": [2, 99999999]}`, `in.jsonl:1:`},
		{`{"ids": []}`, `in.jsonl:1: no tokens`},
		{`[1, 2`, `in.jsonl:1:`},
	} {
		os.WriteFile(in, []byte(c.line+"\n"), 0o644)
		if _, errs, code := runCLI(t, "", "score", "-m", model, "--tokenizer", tok, "--input", in, "--quiet"); code != 1 || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d: %s (want %q)", c.line, code, errs, c.want)
		}
	}
}

// TestKVTypeFlag: run with a float16 or Q8_0 KV cache answers with
// transformers' greedy ids on the tiny checkpoint; bench reports the type.
func TestKVTypeFlag(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	dir := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma-text")
	var g struct {
		GreedyNewIDs []int32 `json:"greedy_new_ids"`
	}
	data, _ := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	var p struct {
		Messages json.RawMessage `json:"messages"`
	}
	data, _ = os.ReadFile(filepath.Join(dir, "prompt.json"))
	json.Unmarshal(data, &p)
	msgs := filepath.Join(t.TempDir(), "m.json")
	os.WriteFile(msgs, p.Messages, 0o644)
	for _, typ := range []string{"f16", "q8_0"} {
		stdout, errs, code := runCLI(t, "", "run", "-m", dir, "--tokenizer", tok, "--kv-type", typ, "--temperature", "0", "--json",
			"--max-tokens", fmt.Sprint(len(g.GreedyNewIDs)), "--quiet", "--messages", msgs)
		var out struct {
			Tokens []int32 `json:"tokens"`
		}
		if err := json.Unmarshal([]byte(stdout), &out); code != 0 || err != nil {
			t.Fatalf("%s: exit %d, %v: %s", typ, code, err, errs)
		}
		if !slices.Equal(out.Tokens, g.GreedyNewIDs) {
			t.Fatalf("%s: tokens %v, transformers' %v", typ, out.Tokens, g.GreedyNewIDs)
		}
	}
	stdout, errs, code := runCLI(t, "", "bench", "--shape", dir, "--prefill", "8", "--decode", "2", "--kv-type", "q8_0", "--quiet", "--json")
	if code != 0 || !strings.Contains(stdout, `"kv_type": "Q8_0"`) {
		t.Fatalf("bench: exit %d %s\n%s", code, errs, stdout)
	}
}
