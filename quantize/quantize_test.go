package quantize

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/gguf"
	"github.com/medgemma/medgemma/internal/npy"
	"github.com/medgemma/medgemma/internal/testenv"
	"github.com/medgemma/medgemma/kernels"
	"github.com/medgemma/medgemma/model"
	"github.com/medgemma/medgemma/safetensors"
)

var small = filepath.Join("..", "testdata", "gguf", "small-gemma3")

// TestQuantizersMatchLlamaCpp: from the same bf16 weights, every tensor of
// llama-quantize's Q8_0 and Q4_0 files (Q8_0, Q4_0, the Q4_0 file's Q6_K
// embedding, every float32 norm stored as 1 + w) is what convert writes,
// byte for byte.
func TestQuantizersMatchLlamaCpp(t *testing.T) {
	ckpt, err := safetensors.OpenDir(small)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	byGGUF := map[string]*safetensors.Tensor{}
	for _, name := range ckpt.Names() {
		if g, ok := model.GGUFTextName(name); ok {
			byGGUF[g] = ckpt.Tensor(name)
		}
	}
	for _, kind := range []string{"Q8_0", "Q4_0"} {
		f, err := gguf.Open(filepath.Join(small, "small-gemma3-"+kind+".gguf"))
		if err != nil {
			t.Fatal(err)
		}
		counts := map[gguf.Type]int{}
		for _, lt := range f.Tensors {
			src := byGGUF[lt.Name]
			if src == nil {
				t.Fatalf("%s: no checkpoint tensor for %s", kind, lt.Name)
			}
			if lt.Type != gguf.Q8_0 && lt.Type != gguf.Q4_0 && lt.Type != gguf.Q6_K && lt.Type != gguf.F32 {
				t.Fatalf("%s %s: %s", kind, lt.Name, lt.Type)
			}
			got, err := convertBytes(src, gguf.TensorSpec{Name: lt.Name, Type: lt.Type, Dims: lt.Dims}, lt.Type == gguf.F32)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, lt.Data) {
				t.Errorf("%s %s (%s): differs from llama.cpp's", kind, lt.Name, lt.Type)
			}
			counts[lt.Type]++
		}
		t.Logf("%s: identical %v", kind, counts)
		if counts[gguf.Q8_0]+counts[gguf.Q4_0] < 40 {
			t.Errorf("%s: only %v compared", kind, counts)
		}
		f.Close()
	}
}

// TestTextBF16 writes the tiny text checkpoint as a bf16 GGUF (its stored
// type, so nothing is lost): the file loads, reads back as the checkpoint's
// config, and its logits are the checkpoint's, bit for bit.
func TestTextBF16(t *testing.T) {
	dir := filepath.Join("..", "testdata", "models", "tiny-medgemma-text")
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	out := filepath.Join(t.TempDir(), "tiny.gguf")
	var calls int
	if err := Text(context.Background(), dir, out, Options{Type: "bf16", Tokenizer: tok, Progress: func(done, total int) { calls++ }}); err != nil {
		t.Fatal(err)
	}
	ref, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if calls != 2+13*ref.Config.Text.NumHiddenLayers {
		t.Errorf("progress called %d times", calls)
	}
	ids := []int32{2, 105, 2364, 107, 9259, 236881, 106, 107, 105, 4368, 107}
	a, b := lastLogits(t, ref, ids), lastLogits(t, m, ids)
	// The GGUF keeps the tokenizer's rows of the embedding (262,145).
	if len(b) != 262145 || len(a) < len(b) {
		t.Fatalf("vocabularies %d and %d", len(a), len(b))
	}
	for i := range b {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("logit %d: %v from the GGUF, %v from safetensors", i, b[i], a[i])
		}
	}
	if err := Text(context.Background(), dir, out, Options{Type: "q3_k"}); err == nil || !strings.Contains(err.Error(), `"q3_k" is not supported`) {
		t.Errorf("q3_k: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out2 := filepath.Join(t.TempDir(), "cancelled.gguf")
	if err := Text(ctx, dir, out2, Options{Type: "bf16", Tokenizer: tok}); err == nil {
		t.Error("cancelled: no error")
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("a cancelled conversion left its file: %v", err)
	}
}

func lastLogits(t *testing.T, m *model.Model, ids []int32) []float32 {
	t.Helper()
	s, err := m.NewSession(64, 64)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Forward(context.Background(), model.Input{IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, m.Config.Text.VocabSize)
	hs := m.Config.Text.HiddenSize
	s.Logits(out, h[(len(ids)-1)*hs:])
	return out
}

// TestMMProj: the tiny multimodal checkpoint's text model written here, with
// llama.cpp's mmproj file of the same weights, encodes the reference image
// bit for bit as the checkpoint does.
func TestMMProj(t *testing.T) {
	dir := filepath.Join("..", "testdata", "models", "tiny-medgemma")
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	out := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := Text(context.Background(), dir, out, Options{Type: "bf16", Tokenizer: tok}); err != nil {
		t.Fatal(err)
	}
	ref, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	mmproj := filepath.Join("..", "testdata", "gguf", "tiny-medgemma", "mmproj-tiny-medgemma-F32.gguf")
	m, err := model.LoadWith(out, model.LoadOptions{MMProj: mmproj})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.HasVision() || *m.Config.Vision != *ref.Config.Vision || m.Config.MMTokensPerImage != ref.Config.MMTokensPerImage {
		t.Fatalf("vision %+v (%d tokens), checkpoint %+v (%d)", m.Config.Vision, m.Config.MMTokensPerImage, ref.Config.Vision, ref.Config.MMTokensPerImage)
	}
	pixels, err := npy.ReadFile(filepath.Join(dir, "pixel_values.f32.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.EncodeImage(context.Background(), pixels.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.EncodeImage(context.Background(), pixels.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("feature %d: %v from the GGUF pair, %v from the checkpoint", i, got[i], want[i])
		}
	}
	// An mmproj of another kind, and one for a text model of another width.
	if _, err := model.LoadWith(out, model.LoadOptions{MMProj: filepath.Join(small, "small-gemma3-Q8_0.gguf")}); err == nil || !strings.Contains(err.Error(), `"gemma3", not an mmproj file`) {
		t.Errorf("text model as mmproj: %v", err)
	}
	if _, err := model.LoadWith(filepath.Join(small, "small-gemma3-Q8_0.gguf"), model.LoadOptions{MMProj: mmproj}); err == nil || !strings.Contains(err.Error(), "projection_dim 24 is not the text model's hidden size 256") {
		t.Errorf("mismatched mmproj: %v", err)
	}
}

// TestMMProjWrite: the mmproj file written here (F32, and F16 as llama.cpp
// keeps it) has llama.cpp's metadata, and encodes the reference image as the
// checkpoint does: bit for bit in F32, within f16 rounding in F16; a
// text-only checkpoint has none to write.
func TestMMProjWrite(t *testing.T) {
	dir := filepath.Join("..", "testdata", "models", "tiny-medgemma")
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	tmp := t.TempDir()
	text := filepath.Join(tmp, "tiny.gguf")
	if err := Text(context.Background(), dir, text, Options{Type: "bf16", Tokenizer: tok}); err != nil {
		t.Fatal(err)
	}
	ref, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	pixels, err := npy.ReadFile(filepath.Join(dir, "pixel_values.f32.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.EncodeImage(context.Background(), pixels.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	llama, err := gguf.Open(filepath.Join("..", "testdata", "gguf", "tiny-medgemma", "mmproj-tiny-medgemma-F32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer llama.Close()
	for _, f32 := range []bool{true, false} {
		path := filepath.Join(tmp, fmt.Sprintf("mmproj-%v.gguf", f32))
		if err := MMProj(context.Background(), dir, path, f32, nil); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range llama.Metadata {
			if kv.Key == "general.name" || kv.Key == "general.file_type" {
				continue
			}
			got, ok := f.Get(kv.Key)
			if !ok || fmt.Sprint(got.V) != fmt.Sprint(kv.Value.V) {
				t.Errorf("f32 %v: %s = %v, llama.cpp's %v", f32, kv.Key, got.V, kv.Value.V)
			}
		}
		if len(f.Tensors) != len(llama.Tensors) {
			t.Errorf("f32 %v: %d tensors, llama.cpp's %d", f32, len(f.Tensors), len(llama.Tensors))
		}
		for _, lt := range llama.Tensors {
			ot, ok := f.Tensor(lt.Name)
			if !ok || fmt.Sprint(ot.Dims) != fmt.Sprint(lt.Dims) {
				t.Fatalf("f32 %v: tensor %s: %+v, llama.cpp's dims %v", f32, lt.Name, ot, lt.Dims)
			}
			if f32 && !bytes.Equal(ot.Data, lt.Data) {
				t.Errorf("tensor %s differs from llama.cpp's", lt.Name)
			}
			// F16 as llama.cpp's converter: matrices F16 but the patch and
			// position embeddings (its CPU backend adds them in F32).
			wantType := gguf.F32
			if !f32 && len(lt.Dims) >= 2 && lt.Name != "v.patch_embd.weight" && lt.Name != "v.position_embd.weight" {
				wantType = gguf.F16
			}
			if ot.Type != wantType {
				t.Errorf("f32 %v: tensor %s in %s, want %s", f32, lt.Name, ot.Type, wantType)
			}
		}
		f.Close()
		m, err := model.LoadWith(text, model.LoadOptions{MMProj: path})
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.EncodeImage(context.Background(), pixels.Data, nil)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		var maxRel float64
		for i := range want {
			if f32 && math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("F32 feature %d: %v, checkpoint %v", i, got[i], want[i])
			}
			maxRel = max(maxRel, math.Abs(float64(got[i]-want[i]))/(math.Abs(float64(want[i]))+1e-3))
		}
		if maxRel > 1e-3 {
			t.Errorf("f32 %v: features within %.2g of the checkpoint's", f32, maxRel)
		}
	}
	if err := MMProj(context.Background(), filepath.Join("..", "testdata", "models", "tiny-medgemma-text"), filepath.Join(tmp, "x.gguf"), false, nil); err == nil || !strings.Contains(err.Error(), "text-only checkpoint") {
		t.Errorf("text-only: %v", err)
	}
}

// TestQ6_KAgainstLlamaCpp: Q6_K quantization of the small model's bf16
// weights is as accurate as llama-quantize's (RMS error of the dequantized
// weights, over every Q6_K tensor of its Q6_K file, at most 1% above), and
// mostly byte-identical.
func TestQ6_KAgainstLlamaCpp(t *testing.T) {
	ckpt, err := safetensors.OpenDir(small)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	f, err := gguf.Open(filepath.Join(small, "small-gemma3-Q6_K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var oursErr, llamaErr float64
	tensors, same := 0, 0
	for _, name := range ckpt.Names() {
		g, ok := model.GGUFTextName(name)
		lt, _ := f.Tensor(g)
		if !ok || lt == nil || lt.Type != gguf.Q6_K {
			continue
		}
		src := ckpt.Tensor(name)
		x, err := src.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		ours, err := convertBytes(src, gguf.TensorSpec{Name: g, Type: gguf.Q6_K, Dims: lt.Dims}, false)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(ours, lt.Data) {
			same++
		}
		a, b := make([]float32, len(x)), make([]float32, len(x))
		kernels.Dequantize(kernels.Q6_K, a, ours)
		kernels.Dequantize(kernels.Q6_K, b, lt.Data)
		for i, v := range x {
			oursErr += float64((a[i] - v) * (a[i] - v))
			llamaErr += float64((b[i] - v) * (b[i] - v))
		}
		tensors++
	}
	ratio := math.Sqrt(oursErr / llamaErr)
	t.Logf("Q6_K: %d tensors, %d byte-identical; RMS error %.4g of llama.cpp's", tensors, same, ratio)
	if tensors < 40 || ratio > 1.01 {
		t.Errorf("Q6_K: %d tensors, RMS error %.4f of llama.cpp's", tensors, ratio)
	}
}

// TestMixesAgainstLlamaCpp: quantize's q4_k_m and q5_k_m choose
// llama-quantize's type for every tensor of the small model (Q6_K for the
// embedding and the value and down projections of layers 2 and 5), and
// their K tensors are as accurate as llama.cpp's (RMS error at most 1%
// above), byte-identical where the arithmetic agrees.
func TestMixesAgainstLlamaCpp(t *testing.T) {
	testMixAgainstLlamaCpp(t, "q4_k_m", "Q4_K_M", gguf.Q4_K)
	// Converted a few rows at a time: the same bytes.
	defer func(n int) { chunkFloats = n }(chunkFloats)
	chunkFloats = 700
	testMixAgainstLlamaCpp(t, "q5_k_m", "Q5_K_M", gguf.Q5_K)
}

func testMixAgainstLlamaCpp(t *testing.T, typ, file string, kt gguf.Type) {
	ckpt, err := safetensors.OpenDir(small)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	f, err := gguf.Open(filepath.Join(small, "small-gemma3-"+file+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var oursErr, llamaErr float64
	tensors, same := 0, 0
	for _, name := range ckpt.Names() {
		g, ok := model.GGUFTextName(name)
		lt, _ := f.Tensor(g)
		if !ok || lt == nil {
			continue
		}
		want := gguf.F32
		if len(lt.Dims) == 2 {
			want = TensorType(typ, g, 6)
		}
		if lt.Type != want {
			t.Errorf("%s: %s, llama.cpp's %s", g, want, lt.Type)
			continue
		}
		src := ckpt.Tensor(name)
		ours, err := convertBytes(src, gguf.TensorSpec{Name: g, Type: lt.Type, Dims: lt.Dims}, lt.Type == gguf.F32)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(ours, lt.Data) {
			same++
		}
		if lt.Type != kt {
			continue
		}
		x, _ := src.Float32s()
		a, b := make([]float32, len(x)), make([]float32, len(x))
		d, _ := kt.DType()
		kernels.Dequantize(d, a, ours)
		kernels.Dequantize(d, b, lt.Data)
		for i, v := range x {
			oursErr += float64((a[i] - v) * (a[i] - v))
			llamaErr += float64((b[i] - v) * (b[i] - v))
		}
		tensors++
	}
	ratio := math.Sqrt(oursErr / llamaErr)
	t.Logf("%s: %d of %d tensors byte-identical; %s RMS error %.4g of llama.cpp's over %d tensors", file, same, len(f.Tensors), kt, ratio, tensors)
	if tensors < 30 || ratio > 1.01 {
		t.Errorf("%s: %d tensors, RMS error %.4f of llama.cpp's", kt, tensors, ratio)
	}
}

// convertBytes is convert into memory.
func convertBytes(t *safetensors.Tensor, spec gguf.TensorSpec, norm bool) ([]byte, error) {
	var b bytes.Buffer
	err := convert(&b, t, spec, norm)
	return b.Bytes(), err
}

// TestChatTemplate: the checkpoint's chat template goes into the file as
// tokenizer.chat_template (as llama.cpp's converter writes it, and its chat
// tools need): from chat_template.jinja first, then chat_template.json's or
// tokenizer_config.json's (a string, or the entry named "default" of a
// list); none, none written; broken or oversized files are errors.
func TestChatTemplate(t *testing.T) {
	for _, c := range []struct {
		files map[string]string
		want  string
		err   string
	}{
		{map[string]string{"tokenizer_config.json": `{"chat_template": "{{ bos_token }}A"}`}, "{{ bos_token }}A", ""},
		{map[string]string{"tokenizer_config.json": `{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}`}, "D", ""},
		{map[string]string{"tokenizer_config.json": `{"chat_template": "A"}`, "chat_template.json": `{"chat_template": "J"}`}, "J", ""},
		{map[string]string{"tokenizer_config.json": `{"chat_template": "A"}`, "chat_template.jinja": "JINJA"}, "JINJA", ""},
		{map[string]string{"tokenizer_config.json": `{"bos_token": "<bos>"}`}, "", ""},
		{map[string]string{}, "", ""},
		{map[string]string{"tokenizer_config.json": `{"chat_template": 7}`}, "", "neither a string nor a list"},
		{map[string]string{"tokenizer_config.json": `{"chat_template": `}, "", "tokenizer_config.json"},
		{map[string]string{"chat_template.jinja": strings.Repeat("x", maxTemplateBytes+1)}, "", "over 1048576 bytes"},
	} {
		dir := t.TempDir()
		for name, body := range c.files {
			os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
		}
		got, err := chatTemplate(dir)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%v: %q, %v; want %q, error with %q", c.files, got, err, c.want, c.err)
		}
	}
	// Through Text: the tiny checkpoint with a template beside it.
	src := filepath.Join("..", "testdata", "models", "tiny-medgemma-text")
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		abs, _ := filepath.Abs(filepath.Join(src, e.Name()))
		os.Symlink(abs, filepath.Join(dir, e.Name()))
	}
	os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"}`), 0o644)
	out := filepath.Join(t.TempDir(), "t.gguf")
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	if err := Text(context.Background(), dir, out, Options{Type: "q8_0", Tokenizer: tok}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, ok := f.Get("tokenizer.chat_template"); !ok || v.V != "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}" {
		t.Fatalf("tokenizer.chat_template = %v, %v", v.V, ok)
	}
}
