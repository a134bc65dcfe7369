package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/internal/testenv"
)

// runCLI runs the command line in-process.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestTokenizeEncodeDecode(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	out, errs, code := runCLI(t, "", "tokenize", "--tokenizer", tok, "Hello, my dog is cute", "--special")
	if code != 0 || out != "[2,9259,236764,1041,4799,563,12864]\n" {
		t.Fatalf("encode: %q %q %d", out, errs, code)
	}
	out, _, code = runCLI(t, "", "tokenize", "--tokenizer", tok, "--decode", "[2,9259,236764,1041,4799,563,12864]")
	if code != 0 || out != "<bos>Hello, my dog is cute\n" {
		t.Errorf("decode: %q %d", out, code)
	}
	out, _, code = runCLI(t, "", "tokenize", "--tokenizer", tok, "--decode", "--skip-special", "2, 9259 236764")
	if code != 0 || out != "Hello,\n" {
		t.Errorf("decode skipping special: %q %d", out, code)
	}
	out, _, code = runCLI(t, "Describe this X-ray", "tokenize", "--tokenizer", tok, "-")
	if code != 0 || out != "[82858,672,1684,236772,1254]\n" {
		t.Errorf("encode stdin: %q %d", out, code)
	}
}

func TestTokenizeInputLines(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	in := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(in, []byte(`{"text": "a"}`+"\n\n"+`{"text": "<start_of_turn>", "other": 1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCLI(t, "", "tokenize", "--tokenizer", tok, "--input", in)
	if code != 0 || out != "{\"ids\":[236746]}\n{\"ids\":[105]}\n" {
		t.Fatalf("--input: %q %q %d", out, errs, code)
	}
	out, _, code = runCLI(t, `{"ids": [236746, 105]}`+"\n", "tokenize", "--tokenizer", tok, "--input", "-", "--decode")
	if code != 0 || out != "{\"text\":\"a\\u003cstart_of_turn\\u003e\"}\n" {
		t.Errorf("--input --decode: %q %d", out, code)
	}
	_, errs, code = runCLI(t, `{"ids": [1]}`+"\n"+`{"txt": "x"}`+"\n", "tokenize", "--tokenizer", tok, "--input", "-")
	if code != 1 || !strings.Contains(errs, `-:1: no "text" field`) {
		t.Errorf("missing field: %q %d", errs, code)
	}
}

func TestTokenizeChat(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	dir := t.TempDir()
	msgs := filepath.Join(dir, "messages.json")
	if err := os.WriteFile(msgs, []byte(`[{"role": "system", "content": "You are an expert radiologist."},
	  {"role": "user", "content": [{"type": "text", "text": "Describe this X-ray"}, {"type": "image", "image": "cxr.png"}]}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The tiny checkpoint's config says 16 tokens per image.
	model := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma")
	prefix := []int32{2, 105, 2364, 107, 3048, 659, 614, 7710, 4574, 16097, 236761, 108, 82858, 672, 1684, 236772, 1254, 108, 255999}
	suffix := []int32{256000, 108, 106, 107, 105, 4368, 107}
	for _, c := range []struct {
		args []string
		n    int
	}{
		{[]string{"--tokenizer", tok}, 256},
		{[]string{"--tokenizer", tok, "--model", model}, 16},
		{[]string{"--tokenizer", tok, "--model", model, "--image-tokens", "3"}, 3},
	} {
		out, errs, code := runCLI(t, "", append([]string{"tokenize", "--chat", msgs}, c.args...)...)
		var ids []int32
		if code != 0 || json.Unmarshal([]byte(out), &ids) != nil {
			t.Fatalf("%v: %q %q %d", c.args, out, errs, code)
		}
		want := slices.Concat(prefix, slices.Repeat([]int32{262144}, c.n), suffix)
		if !slices.Equal(ids, want) {
			t.Errorf("%v:\n got %v\nwant %v", c.args, ids, want)
		}
	}
	out, _, code := runCLI(t, "", "tokenize", "--tokenizer", tok, "--chat", msgs, "--crops", "3")
	var ids []int32
	if code != 0 || json.Unmarshal([]byte(out), &ids) != nil || len(ids) != 1081 {
		t.Errorf("--crops 3: %d ids (want 1081, as pan_and_scan_expansion.json), code %d", len(ids), code)
	}
}

func TestExitCodes(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"tokenize", "x"}, 2, "--model DIR or --tokenizer FILE is required"},
		{[]string{"tokenize", "--tokenizer", tok}, 2, "nothing to tokenize"},
		{[]string{"tokenize", "--tokenizer", tok, "a", "b"}, 2, "exactly one of TEXT"},
		{[]string{"tokenize", "--tokenizer", tok, "--bogus", "a"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"tokenize", "--tokenizer", tok, "--decode", "[1,x]"}, 2, "ids:"},
		{[]string{"tokenize", "--tokenizer", tok, "--decode", "[300000]"}, 1, "id 300000 (position 0) is not a token"},
		{[]string{"tokenize", "--tokenizer", "/nonexistent/tokenizer.json", "a"}, 1, "/nonexistent/tokenizer.json"},
		{[]string{"tokenize", "--tokenizer", tok, "--chat", bad}, 1, "Conversation roles must alternate"},
		{[]string{"tokenize", "--tokenizer", tok, "--chat", bad, "--crops", "x"}, 2, "--crops"},
	} {
		_, errs, code := runCLI(t, "", c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
	out, _, code := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "medgemma ") {
		t.Errorf("version: %q %d", out, code)
	}
}

func TestPreprocess(t *testing.T) {
	ref := filepath.Join("..", "..", "imageproc", "testdata", "images")
	out := filepath.Join(t.TempDir(), "wide")
	stdout, errs, code := runCLI(t, "", "preprocess", "--image", filepath.Join(ref, "wide_rgb_1800x600.png"), "--pan-and-scan", "--out", out)
	if code != 0 || !strings.Contains(stdout, "pixel_values shape: [4, 3, 896, 896]") || !strings.Contains(stdout, "png RGB 1800x600") {
		t.Fatalf("preprocess: %q %q %d", stdout, errs, code)
	}
	for k := range 4 {
		got := readPNGPixels(t, fmt.Sprintf("%s.%d.png", out, k))
		want := readPNGPixels(t, filepath.Join(ref, "expected", fmt.Sprintf("wide_rgb_1800x600.png.panscan.u8.%d.png", k)))
		if !bytes.Equal(got, want) {
			t.Errorf("crop %d differs from the reference", k)
		}
	}
	dcm := filepath.Join("..", "..", "imageproc", "testdata", "dicom", "ct_test_series_image0.dcm")
	stdout, _, code = runCLI(t, "", "preprocess", "--image", dcm, "--window", "-600,1500", "--out", out)
	if code != 0 || !strings.Contains(stdout, "dicom CT MONOCHROME2 512x512, frame 0 of 1, window -600,1500") || !strings.Contains(stdout, "[1, 3, 896, 896]") {
		t.Errorf("DICOM: %q %d", stdout, code)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"preprocess", "--out", out}, 2, "--image FILE is required"},
		{[]string{"preprocess", "--image", dcm}, 2, "--out PREFIX is required"},
		{[]string{"preprocess", "--image", dcm, "--out", out, "--window", "liver"}, 2, `window "liver": want a preset`},
		{[]string{"preprocess", "--image", dcm, "--out", out, "--frame", "3"}, 1, "frame 3 requested, the file has 1 frame(s)"},
		{[]string{"preprocess", "--image", "main.go", "--out", out}, 1, "main.go: unknown image format"},
		{[]string{"preprocess", "--image", dcm, "--out", out, "--max-pixels", "1000"}, 1, "over the limit of 1000"},
	} {
		_, errs, code := runCLI(t, "", c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
}

func readPNGPixels(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Bounds()
	var out []byte
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := m.At(x, y).RGBA()
			out = append(out, byte(r>>8), byte(g>>8), byte(bl>>8))
		}
	}
	return out
}

// TestRunAcceptance: medgemma run --temperature 0 --json --top-logprobs 5
// on both tiny checkpoints (the multimodal one with the reference X-ray and
// prompt) reproduces transformers' greedy ids and per-step logprobs.
func TestRunAcceptance(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	root := filepath.Join("..", "..")
	for _, c := range []struct {
		name string
		args []string
	}{
		{"tiny-medgemma", []string{"--system", "You are an expert radiologist.", "--image", filepath.Join(root, "imageproc", "testdata", "images", "cxr_like_gray_1024x1024.png"), "Describe this X-ray"}},
		{"tiny-medgemma-text", []string{"--messages", filepath.Join(t.TempDir(), "m.json")}},
	} {
		dir := filepath.Join(root, "testdata", "models", c.name)
		var g struct {
			GreedyNewIDs        []int32        `json:"greedy_new_ids"`
			GreedyStepTop10     [][2][]float64 `json:"greedy_step_top10"`
			GreedyStepLogSumExp []float64      `json:"greedy_step_logsumexp"`
		}
		data, _ := os.ReadFile(filepath.Join(dir, "golden.json"))
		if err := json.Unmarshal(data, &g); err != nil {
			t.Fatal(err)
		}
		if c.args[0] == "--messages" {
			var p struct {
				Messages json.RawMessage `json:"messages"`
			}
			data, _ := os.ReadFile(filepath.Join(dir, "prompt.json"))
			json.Unmarshal(data, &p)
			os.WriteFile(c.args[1], p.Messages, 0o644)
		}
		args := append([]string{"run", "-m", dir, "--tokenizer", tok, "--temperature", "0", "--json", "--top-logprobs", "5",
			"--max-tokens", fmt.Sprint(len(g.GreedyNewIDs)), "--quiet"}, c.args...)
		stdout, errs, code := runCLI(t, "", args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.name, code, errs)
		}
		var out struct {
			Tokens       []int32 `json:"tokens"`
			FinishReason string  `json:"finish_reason"`
			Logprobs     []struct {
				Token       int32   `json:"token"`
				Logprob     float64 `json:"logprob"`
				TopLogprobs []struct {
					Token   int32   `json:"token"`
					Logprob float64 `json:"logprob"`
				} `json:"top_logprobs"`
			} `json:"logprobs"`
			Timings map[string]float64 `json:"timings"`
		}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, stdout)
		}
		if !slices.Equal(out.Tokens, g.GreedyNewIDs) || out.FinishReason != "length" || len(out.Logprobs) != len(g.GreedyNewIDs) {
			t.Fatalf("%s: tokens %v (%s), want %v", c.name, out.Tokens, out.FinishReason, g.GreedyNewIDs)
		}
		for i, lp := range out.Logprobs {
			top, lse := g.GreedyStepTop10[i], g.GreedyStepLogSumExp[i]
			if d := lp.Logprob - (top[1][0] - lse); d > 1e-4 || d < -1e-4 || len(lp.TopLogprobs) != 5 {
				t.Errorf("%s step %d: logprob %v, want %v", c.name, i, lp.Logprob, top[1][0]-lse)
			}
			for k, a := range lp.TopLogprobs {
				if a.Token != int32(top[0][k]) {
					t.Errorf("%s step %d alternative %d: %d, want %v", c.name, i, k, a.Token, top[0][k])
				}
			}
		}
	}
}

func TestRunSeeds(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	dir := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma-text")
	sample := func(seed string) string {
		out, errs, code := runCLI(t, "", "run", "-m", dir, "--tokenizer", tok, "--seed", seed, "--max-tokens", "16", "--quiet", "Hello there")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		return out
	}
	a, b, c := sample("1"), sample("1"), sample("2")
	if a != b || a == c {
		t.Errorf("seed 1 twice: %q / %q; seed 2: %q", a, b, c)
	}
	for _, cse := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "hello"}, 2, "-m MODEL is required"},
		{[]string{"run", "-m", dir}, 2, "give the PROMPT"},
		{[]string{"run", "-m", dir, "--max-tokens", "9000", "x"}, 2, "--max-tokens"},
		{[]string{"run", "-m", dir, "--tokenizer", tok, "--top-p", "2", "x"}, 2, "top-p"},
		{[]string{"run", "-m", "/nonexistent", "x"}, 1, "not a checkpoint directory"},
		{[]string{"run", "-m", dir, "--tokenizer", tok, "--image", "x.png", "x"}, 1, "text only"},
	} {
		_, errs, code := runCLI(t, "", cse.args...)
		if code != cse.code || !strings.Contains(errs, cse.want) {
			t.Errorf("%v: exit %d %q, want %d %q", cse.args, code, errs, cse.code, cse.want)
		}
	}
}

// TestRefusedFlagValues: values no sampler or loader can use are usage
// errors (exit 2), found before any model is loaded (the model here does
// not exist).
func TestRefusedFlagValues(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--temperature", "nan"}, "temperature must be a finite number"},
		{[]string{"--temperature", "+Inf"}, "temperature must be a finite number"},
		{[]string{"--top-p", "NaN"}, "top-p must be a finite number"},
		{[]string{"--min-p", "nan"}, "min-p must be a finite number"},
		{[]string{"--frequency-penalty", "nan"}, "frequency penalty must be a finite number"},
		{[]string{"--repetition-penalty", "0"}, "--repetition-penalty must be positive"},
		{[]string{"--repetition-penalty", "nan"}, "--repetition-penalty must be positive"},
		{[]string{"--repetition-penalty", "-1"}, "--repetition-penalty must be positive"},
		{[]string{"--threads", "-3"}, "--threads must be 0 (all) or more"},
		{[]string{"--frame", "-1"}, "--frame must be 0 or more"},
		{[]string{"--top-logprobs", "-1"}, "--top-logprobs must be in 0..20"},
		{[]string{"--top-logprobs", "21"}, "--top-logprobs must be in 0..20"},
		{[]string{"--stop", ""}, "stop string 0 is 0 bytes"},
	} {
		args := append([]string{"run", "-m", "/nonexistent/model"}, c.args...)
		_, errs, code := runCLI(t, "", append(args, "x")...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errs, c.want)
		}
		args[0] = "chat"
		if _, errs, code := runCLI(t, "", args...); code != 2 || !strings.Contains(errs, c.want) && c.args[0] != "--top-logprobs" {
			t.Errorf("chat %v: exit %d, stderr %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
}

// TestPull downloads a two-file repository from a fake hub on loopback.
func TestPull(t *testing.T) {
	const commit = "89abcdef0123456789abcdef0123456789abcdef"
	weights := []byte("0123456789")
	sum := sha256.Sum256(weights)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/models/org/tiny/revision/main":
			fmt.Fprintf(w, `{"sha": %q, "siblings": [{"rfilename": "config.json", "size": 2, "blobId": "aaaa"},
				{"rfilename": "model.safetensors", "size": 10, "lfs": {"sha256": %q, "size": 10}}]}`, commit, hex.EncodeToString(sum[:]))
		case "/org/tiny/resolve/" + commit + "/config.json":
			w.Write([]byte("{}"))
		case "/org/tiny/resolve/" + commit + "/model.safetensors":
			w.Write(weights)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cache := t.TempDir()
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HUB_OFFLINE", "")
	out, errs, code := runCLI(t, "", "pull", "org/tiny")
	want := filepath.Join(cache, "models--org--tiny", "snapshots", commit)
	if code != 0 || strings.TrimSpace(out) != want {
		t.Fatalf("pull: %q %q %d", out, errs, code)
	}
	if b, err := os.ReadFile(filepath.Join(want, "model.safetensors")); err != nil || string(b) != "0123456789" {
		t.Errorf("weights: %q %v", b, err)
	}
	_, errs, code = runCLI(t, "", "pull", "org/missing")
	if code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("missing repo: %q %d", errs, code)
	}
	_, errs, code = runCLI(t, "", "pull", "not-a-repo")
	if code != 2 || !strings.Contains(errs, "not a Hugging Face repository id") {
		t.Errorf("bad id: %q %d", errs, code)
	}
}

// TestChatSession drives the interactive chat through standard input: a
// multi-turn conversation, /system, /image on a text-only model (an error
// that keeps the session), /reset and /exit.
func TestChatSession(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	dir := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma-text")
	script := "Hello\nAnd then?\n/system Answer briefly.\nHi again\n/image x.png\nLook\n/bogus\n/reset\nAgain\n/exit\nnever read\n"
	out, errs, code := runCLI(t, script, "chat", "-m", dir, "--tokenizer", tok, "--temperature", "0", "--max-tokens", "5", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"(system prompt set; new conversation)", "(image x.png attached to your next message)",
		"part 1: this checkpoint is text only and takes no images)", "(unknown command /bogus", "(new conversation)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Greedy answers: the same question in a fresh conversation answers the same.
	lines := strings.Split(out, "\n")
	if len(lines) < 4 || lines[0] == "" {
		t.Fatalf("output:\n%s", out)
	}
	again, _, _ := runCLI(t, "Hello\n", "chat", "-m", dir, "--tokenizer", tok, "--temperature", "0", "--max-tokens", "5", "--quiet")
	if strings.Split(again, "\n")[0] != lines[0] {
		t.Errorf("first answers differ: %q vs %q", again, lines[0])
	}
}

// TestInspectKV: inspect sizes the KV cache of the real shapes: every
// layer's key and value per token (float32), only the full-attention
// layers' past the sliding window.
func TestInspectKV(t *testing.T) {
	for _, c := range []struct {
		shape                      string
		perToken, pastWindow, at8K int64
	}{
		// 34 layers (5 full), 4 KV heads x 256: 2 x 4 x 256 x 4 bytes = 8 KiB a layer.
		{"medgemma-4b-it", 34 * 8192, 5 * 8192, 5*8192*8192 + 29*8192*1024},
		// 62 layers (10 full), 16 KV heads x 128: 16 KiB a layer.
		{"medgemma-27b-text-it", 62 * 16384, 10 * 16384, 10*16384*8192 + 52*16384*1024},
	} {
		out, errs, code := runCLI(t, "", "inspect", "--json", c.shape)
		if code != 0 {
			t.Fatalf("%s: %d %s", c.shape, code, errs)
		}
		var r inspectResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if r.KVBytesPerToken != c.perToken || r.KVBytesPerTokenPastWindow != c.pastWindow || r.KVCacheBytes != c.at8K {
			t.Errorf("%s: %d bytes per token (%d past the window), %d at 8K; want %d (%d), %d",
				c.shape, r.KVBytesPerToken, r.KVBytesPerTokenPastWindow, r.KVCacheBytes, c.perToken, c.pastWindow, c.at8K)
		}
		out, _, _ = runCLI(t, "", "inspect", c.shape)
		if want := fmt.Sprintf("kv per token   %d KiB (%d KiB past the sliding window)", c.perToken>>10, c.pastWindow>>10); !strings.Contains(out, want) {
			t.Errorf("%s: no %q in\n%s", c.shape, want, out)
		}
	}
}
