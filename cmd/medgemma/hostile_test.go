package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medgemma/medgemma/internal/testenv"
)

// TestHostileArguments: each of these used to crash, hang, print the wrong
// thing or look in the wrong place.
func TestHostileArguments(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	dir := t.TempDir()
	msgs := filepath.Join(dir, "messages.json")
	os.WriteFile(msgs, []byte(`[{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image"}]}]`), 0o644)
	bom := filepath.Join(dir, "bom.json")
	os.WriteFile(bom, []byte("\xef\xbb\xbf"+`[{"role": "user", "content": "hi"}]`), 0o644)
	bomLines := filepath.Join(dir, "bom.jsonl")
	os.WriteFile(bomLines, []byte("\xef\xbb\xbf"+`{"text": ""}`+"\n"), 0o644)
	tiny := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma")
	img := filepath.Join("..", "..", "imageproc", "testdata", "images", "tiny_rgb_20x30.png")
	for _, c := range []struct {
		args       []string
		code       int
		out, other string // stdout (exact) or stderr (contains)
	}{
		{[]string{"tokenize", "--tokenizer", tok, ""}, 0, "[]\n", ""},
		{[]string{"tokenize", "--tokenizer", tok, "--input", bomLines}, 0, "{\"ids\":[]}\n", ""},
		{[]string{"tokenize", "--tokenizer", tok, "--chat", bom}, 0, "[2,105,2364,107,2202,106,107,105,4368,107]\n", ""},
		{[]string{"tokenize", "--tokenizer", tok, "--chat", msgs, "--image-tokens", "1000000000"}, 2, "", "--image-tokens must be in 1..65536"},
		{[]string{"tokenize", "--tokenizer", tok, "--chat", msgs, "--crops", "100000000"}, 2, "", "--crops: 100000000 crops; at most 64 per image"},
		{[]string{"inspect", "--context", "9223372036854775807", "medgemma-4b-it"}, 2, "", "--context 9223372036854775807 is over the model's 131072 positions"},
		{[]string{"bench", "--shape", tiny, "--batch", "1,0"}, 2, "", `--batch "1,0": want sizes 1..256`},
		{[]string{"bench", "--shape", tiny, "--batch", "99999999999999999999"}, 2, "", "want sizes 1..256"},
		{[]string{"bench", "--shape", tiny, "--batch", "4", "--decode", "0"}, 2, "", "--batch needs --decode of at least 1"},
		{[]string{"bench", "--shape", "medgemma-4b-it", "--quant", "q9_9"}, 2, "", `--quant "q9_9": want one of q8_0, q6_k, q5_k_m, q4_k_m, q4_0, q5_k, q4_k, bf16`},
		{[]string{"perplexity", "-m", "x", "-f", "t", "--chunks", "-1"}, 2, "", `--chunks -1: want 0 (all) or more`},
		{[]string{"score", "-m", "x", "--input", "f", "--top-logprobs", "21"}, 2, "", `--top-logprobs 21: want 0..20`},
		{[]string{"score", "--input", "f"}, 2, "", `-m MODEL is required`},
		{[]string{"run", "-m", "x", "--kv-type", "q4_k", "hi"}, 2, "", `--kv-type: KV cache type "q4_k": want f32, f16 or q8_0`},
		{[]string{"bench", "--shape", "medgemma-4b-it", "--kv-type", "bf16"}, 2, "", `--kv-type: KV cache type "bf16": want f32, f16 or q8_0`},
		{[]string{"bench", "--shape", tiny, "--quant", "q8_0"}, 2, "", "--quant writes random weights of a published shape"},
		{[]string{"preprocess", "--model", "/nonexistent", "--image", img, "--out", filepath.Join(dir, "x")}, 1, "", "--model /nonexistent is not a checkpoint directory"},
		{[]string{"preprocess", "--model", tiny, "--image", img, "--frame", "-1", "--out", filepath.Join(dir, "x")}, 2, "", "--frame must be 0 or more"},
	} {
		stdout, stderr, code := runCLI(t, "", c.args...)
		if code != c.code || (c.out != "" && stdout != c.out) || !strings.Contains(stderr, c.other) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q, %q", c.args, code, stdout, stderr, c.code, c.out, c.other)
		}
	}
}

// TestModelIsAFile: a relative path to a file, spelled like a repository id
// (ck/afile), is neither; it used to be looked up on the network.
func TestModelIsAFile(t *testing.T) {
	t.Chdir(t.TempDir())
	os.Mkdir("ck", 0o755)
	os.WriteFile(filepath.Join("ck", "afile"), []byte("x"), 0o644)
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:1") // nothing is asked of a hub
	_, errs, code := runCLI(t, "", "run", "-m", "ck/afile", "hi")
	if code != 1 || !strings.Contains(errs, `model "ck/afile" is a file: neither a checkpoint directory, a .gguf file nor a Hugging Face repository id`) {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

// TestChatLongLine: a line over 1 MiB is skipped with a notice; the session
// goes on (it used to end).
func TestChatLongLine(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	dir := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma-text")
	script := strings.Repeat("x", 3<<20) + "\nHello\n/exit\n"
	out, errs, code := runCLI(t, script, "chat", "-m", dir, "--tokenizer", tok, "--temperature", "0", "--max-tokens", "3", "--quiet")
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) < 2 || lines[0] != "(that line is over 1048576 bytes; not sent)" || lines[1] == "" {
		t.Errorf("exit %d, stderr %q, output %q", code, errs, out)
	}
}

// TestRunInterrupted: Ctrl-C during the prefill of a long prompt stops it
// before the next chunk (it used to run on for seconds, then exit 0) and
// exits 130 with a line on stderr.
func TestRunInterrupted(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	dir := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma-text")
	var mu sync.Mutex
	var chunks []int
	prefillHook = func(ctx context.Context, done, total int) {
		mu.Lock()
		chunks = append(chunks, done)
		mu.Unlock()
		if done == 512 {
			syscall.Kill(syscall.Getpid(), syscall.SIGINT)
			select { // the signal has cancelled the run before the next chunk starts
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Error("SIGINT did not cancel the run")
			}
		}
	}
	defer func() { prefillHook = nil }()
	out, errs, code := runCLI(t, "", "run", "-m", dir, "--tokenizer", tok, "--max-tokens", "4", "--quiet", strings.Repeat("word ", 3000))
	mu.Lock()
	defer mu.Unlock()
	if code != exitInterrupted || errs != "medgemma run: interrupted\n" || out != "" || len(chunks) != 1 {
		t.Errorf("exit %d, stderr %q, stdout %q, prefill chunks %v; want 130, the interrupted line, nothing, one chunk", code, errs, out, chunks)
	}
}

// TestSecondInterruptExits: the first SIGINT cancels, the second exits at
// once with 130.
func TestSecondInterruptExits(t *testing.T) {
	exited := make(chan int, 1)
	exit = func(code int) { exited <- code }
	defer func() { exit = os.Exit }()
	var errs strings.Builder
	ctx, stop := interruptible(context.Background(), &errs)
	defer stop()
	syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the first SIGINT did not cancel")
	}
	if context.Cause(ctx) != errInterrupted {
		t.Errorf("cause %v", context.Cause(ctx))
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	select {
	case code := <-exited:
		if code != exitInterrupted || !strings.Contains(errs.String(), "interrupted again, exiting") {
			t.Errorf("exit %d, stderr %q", code, errs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second SIGINT did not exit")
	}
}

// TestChatInterrupted: Ctrl-C stops the answer in progress and the session
// goes on to the next message.
func TestChatInterrupted(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	dir := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma-text")
	prefillHook = func(ctx context.Context, done, total int) {
		if total > 1000 && done == 512 {
			syscall.Kill(syscall.Getpid(), syscall.SIGINT)
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Error("SIGINT did not stop the answer")
			}
		}
	}
	defer func() { prefillHook = nil }()
	script := strings.Repeat("word ", 3000) + "\nHello\n/exit\n"
	out, errs, code := runCLI(t, script, "chat", "-m", dir, "--tokenizer", tok, "--temperature", "0", "--max-tokens", "3", "--quiet")
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) < 2 || lines[0] != "(stopped)" || lines[1] == "" {
		t.Errorf("exit %d, stderr %q, output %q", code, errs, out)
	}
}
