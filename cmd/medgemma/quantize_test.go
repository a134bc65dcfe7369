package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/internal/testenv"
)

// TestQuantizeThenRun: quantize writes the tiny checkpoint as a bf16 GGUF,
// inspect describes it, and run answers from it exactly as from the
// checkpoint, given the tokenizer by flag or beside the file.
func TestQuantizeThenRun(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma-text")
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	outDir := t.TempDir()
	out, errs, code := runCLI(t, "", "quantize", "-m", dir, "--type", "BF16", "--out", outDir, "--tokenizer", tok)
	path := filepath.Join(outDir, "tiny-medgemma-text-BF16.gguf")
	if code != 0 || out != path+"\n" {
		t.Fatalf("quantize: %q %q %d", out, errs, code)
	}
	out, _, code = runCLI(t, "", "inspect", path)
	if code != 0 || !strings.Contains(out, "dtypes         BF16 x57, F32 x49") || !strings.Contains(out, "8 layers: 6 sliding (window 32") {
		t.Errorf("inspect: %q %d", out, code)
	}
	args := []string{"--temperature", "0", "--max-tokens", "6", "--quiet", "Describe a chest X-ray"}
	want, errs, code := runCLI(t, "", append([]string{"run", "-m", dir, "--tokenizer", tok}, args...)...)
	if code != 0 || want == "" {
		t.Fatalf("run on the checkpoint: %q %d", errs, code)
	}
	got, errs, code := runCLI(t, "", append([]string{"run", "-m", path, "--tokenizer", tok}, args...)...)
	if code != 0 || got != want {
		t.Errorf("run on the GGUF: %q (%q %d), on the checkpoint %q", got, errs, code, want)
	}
	// Without a tokenizer.json, the file's own vocabulary.
	loud := []string{"--temperature", "0", "--max-tokens", "6", "Describe a chest X-ray"}
	got, errs, code = runCLI(t, "", append([]string{"run", "-m", path}, loud...)...)
	if code != 0 || got != want || !strings.Contains(errs, "medgemma: tokenizer from "+path+" (its vocabulary)") {
		t.Errorf("run with the GGUF's vocabulary: %q (%q %d), on the checkpoint %q", got, errs, code, want)
	}
	data, err := os.ReadFile(tok)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(outDir, "tokenizer.json"), data, 0o644)
	got, errs, code = runCLI(t, "", append([]string{"run", "-m", outDir}, args...)...)
	if code != 0 || got != want {
		t.Errorf("run on the GGUF's directory: %q (%q %d), on the checkpoint %q", got, errs, code, want)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"quantize", "-m", dir, "--type", "q9_9", "--out", outDir}, `--type "q9_9" is not supported (bf16, f32, q4_0, q4_k_m, q5_k_m, q6_k, q8_0)`},
		{[]string{"quantize", "--type", "q8_0", "--out", outDir}, "-m MODEL is required"},
		{[]string{"quantize", "-m", dir, "--type", "q8_0"}, "--out DIR is required"},
		{[]string{"quantize", "-m", path, "--type", "q8_0", "--out", outDir}, "is already a GGUF file"},
	} {
		if _, errs, code := runCLI(t, "", c.args...); code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: %q %d", c.args, errs, code)
		}
	}
}

// TestGGUFPairRun: the tiny multimodal checkpoint as a GGUF text model with
// llama.cpp's mmproj beside it answers a question about an image exactly as
// the checkpoint does; --mmproj names the file too, and a checkpoint
// directory refuses one.
func TestGGUFPairRun(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma")
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	mmproj := filepath.Join("..", "..", "testdata", "gguf", "tiny-medgemma", "mmproj-tiny-medgemma-F32.gguf")
	img := filepath.Join("..", "..", "imageproc", "testdata", "images", "tiny_rgb_20x30.png")
	outDir := t.TempDir()
	out, errs, code := runCLI(t, "", "quantize", "-m", dir, "--type", "bf16", "--out", outDir, "--tokenizer", tok, "--quiet")
	ours := filepath.Join(outDir, "mmproj-tiny-medgemma-F16.gguf")
	if code != 0 || out != filepath.Join(outDir, "tiny-medgemma-BF16.gguf")+"\n"+ours+"\n" {
		t.Fatalf("quantize: %q %q", out, errs)
	}
	// The pair quantize wrote answers (f16 vision: the same greedy tokens
	// on this tiny model).
	if got, errs, code := runCLI(t, "", append([]string{"run", "-m", outDir}, "--temperature", "0", "--max-tokens", "6", "--quiet", "--image", img, "Describe the image")...); code != 0 || got == "" {
		t.Fatalf("our pair: %q %d", errs, code)
	}
	os.Remove(ours)
	args := []string{"--temperature", "0", "--max-tokens", "6", "--quiet", "--image", img, "Describe the image"}
	want, errs, code := runCLI(t, "", append([]string{"run", "-m", dir, "--tokenizer", tok}, args...)...)
	if code != 0 || want == "" {
		t.Fatalf("checkpoint: %q %d", errs, code)
	}
	got, errs, code := runCLI(t, "", append([]string{"run", "-m", filepath.Join(outDir, "tiny-medgemma-BF16.gguf"), "--mmproj", mmproj}, args...)...)
	if code != 0 || got != want {
		t.Errorf("GGUF with --mmproj: %q (%q %d), checkpoint %q", got, errs, code, want)
	}
	data, err := os.ReadFile(mmproj)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(outDir, "mmproj-tiny.gguf"), data, 0o644)
	got, errs, code = runCLI(t, "", append([]string{"run", "-m", outDir}, args...)...)
	if code != 0 || got != want {
		t.Errorf("GGUF directory: %q (%q %d), checkpoint %q", got, errs, code, want)
	}
	_, errs, code = runCLI(t, "", append([]string{"run", "-m", dir, "--tokenizer", tok, "--mmproj", mmproj}, args...)...)
	if code != 1 || !strings.Contains(errs, "an mmproj file goes with a GGUF model") {
		t.Errorf("checkpoint with --mmproj: %q %d", errs, code)
	}
}
