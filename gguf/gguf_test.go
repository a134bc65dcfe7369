package gguf

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/internal/npy"
)

var refDir = filepath.Join("..", "testdata", "gguf", "small-gemma3")

var refFiles = []string{"Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"}

func openRef(t *testing.T, kind string) *File {
	t.Helper()
	f, err := Open(filepath.Join(refDir, "small-gemma3-"+kind+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestReadReference reads llama.cpp's files: the metadata of the small
// Gemma 3 model, its tensors in llama.cpp's names and the types the
// quantizer chose.
func TestReadReference(t *testing.T) {
	for _, kind := range refFiles {
		f := openRef(t, kind)
		if f.Version != 3 || f.Alignment != 32 {
			t.Errorf("%s: version %d, alignment %d", kind, f.Version, f.Alignment)
		}
		if a, err := f.String("general.architecture"); err != nil || a != "gemma3" {
			t.Errorf("%s: architecture %q %v", kind, a, err)
		}
		for key, want := range map[string]int64{"gemma3.block_count": 6, "gemma3.embedding_length": 256, "gemma3.feed_forward_length": 512, "gemma3.attention.head_count": 4, "gemma3.attention.head_count_kv": 2, "gemma3.attention.key_length": 64, "gemma3.attention.sliding_window": 16} {
			if v, err := f.Int(key, 0, 1<<20); err != nil || v != want {
				t.Errorf("%s: %s = %d %v, want %d", kind, key, v, err, want)
			}
		}
		if eps, err := f.Float("gemma3.attention.layer_norm_rms_epsilon"); err != nil || math.Abs(eps-1e-6) > 1e-12 {
			t.Errorf("%s: eps %v %v", kind, eps, err)
		}
		if toks, err := f.Strings("tokenizer.ggml.tokens"); err != nil || len(toks) != 4096 || toks[2] != "<bos>" {
			t.Errorf("%s: %d tokens, %v", kind, len(toks), err)
		}
		// 6 layers x 13 tensors, the embedding and the final norm.
		if len(f.Tensors) != 6*13+2 {
			t.Errorf("%s: %d tensors", kind, len(f.Tensors))
		}
		types := map[Type]int{}
		for _, tn := range f.Tensors {
			types[tn.Type]++
		}
		emb, ok := f.Tensor("token_embd.weight")
		if !ok || len(emb.Dims) != 2 || emb.Dims[0] != 256 || emb.Dims[1] != 4096 || emb.Rows() != 4096 {
			t.Fatalf("%s: token_embd %+v", kind, emb)
		}
		if n, ok := f.Tensor("blk.5.post_ffw_norm.weight"); !ok || n.Type != F32 || n.Elements() != 256 {
			t.Errorf("%s: post_ffw_norm %+v", kind, n)
		}
		t.Logf("%s: %v", kind, types)
	}
	if q, _ := openRef(t, "Q4_K_M").Tensor("blk.0.attn_k.weight"); q.Type != Q4_K {
		t.Errorf("Q4_K_M attn_k is %s", q.Type)
	}
}

// TestDequantizeReference: every quantized type widens bit for bit as
// ggml's reference (gguf-py) does, against its output for one tensor of
// each type (the first 128 rows of the larger ones are kept in testdata).
func TestDequantizeReference(t *testing.T) {
	var index []struct {
		File, Tensor, Type, Npy string
		Shape                   []int
	}
	b, err := os.ReadFile(filepath.Join(refDir, "dequant", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range index {
		f, err := Open(filepath.Join(refDir, e.File))
		if err != nil {
			t.Fatal(err)
		}
		tn, ok := f.Tensor(e.Tensor)
		if !ok || tn.Type.String() != e.Type {
			t.Fatalf("%s %s: %+v", e.File, e.Tensor, tn)
		}
		got, err := tn.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		want, err := npy.ReadFile(filepath.Join(refDir, e.Npy))
		if err != nil {
			t.Fatal(err)
		}
		if want.Shape[1] != tn.Dims[0] || len(want.Data) > len(got) {
			t.Fatalf("%s: reference shape %v, tensor %v", e.Tensor, want.Shape, tn.Dims)
		}
		for i, w := range want.Data {
			if math.Float32bits(got[i]) != math.Float32bits(w) {
				t.Fatalf("%s %s [%d]: %v, ggml %v", e.Type, e.Tensor, i, got[i], w)
			}
		}
		seen[e.Type] = true
		f.Close()
	}
	for _, typ := range []string{"Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"} {
		if !seen[typ] {
			t.Errorf("no reference for %s", typ)
		}
	}
}

// TestRewriteReference: writing a file's metadata and tensors back with
// Writer gives llama.cpp's file byte for byte (order, padding, offsets).
func TestRewriteReference(t *testing.T) {
	for _, kind := range refFiles {
		path := filepath.Join(refDir, "small-gemma3-"+kind+".gguf")
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(orig)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := rewrite(&buf, f); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), orig) {
			t.Errorf("%s: rewritten file differs (%d bytes, original %d)", kind, buf.Len(), len(orig))
		}
	}
}

func rewrite(w *bytes.Buffer, f *File) error {
	specs := make([]TensorSpec, len(f.Tensors))
	for i, t := range f.Tensors {
		specs[i] = TensorSpec{t.Name, t.Type, t.Dims}
	}
	gw, err := NewWriter(w, f.Metadata, specs)
	if err != nil {
		return err
	}
	for _, t := range f.Tensors {
		if err := gw.WriteTensor(t.Data); err != nil {
			return err
		}
	}
	return gw.Close()
}

// TestRoundTrip: every metadata type, scalar and array, and tensors of
// every type written and read back.
func TestRoundTrip(t *testing.T) {
	meta := []KV{
		{"general.architecture", Of("gemma3")},
		{"general.alignment", Of(uint32(64))},
		{"u8", Of(uint8(200))}, {"i8", Of(int8(-7))}, {"u16", Of(uint16(60000))}, {"i16", Of(int16(-300))},
		{"u32", Of(uint32(1 << 31))}, {"i32", Of(int32(-1 << 30))}, {"f32", Of(float32(1.5))}, {"b", Of(true)},
		{"u64", Of(uint64(1 << 60))}, {"i64", Of(int64(-1 << 60))}, {"f64", Of(2.25)},
		{"strs", ArrayOf([]string{"a", "", "ü"})}, {"f32s", ArrayOf([]float32{1, -2})}, {"i32s", ArrayOf([]int32{3})},
		{"bools", ArrayOf([]bool{true, false})}, {"empty", ArrayOf([]uint8{})},
	}
	var tensors []WriteTensor
	for i, typ := range []Type{F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K} {
		cols := typ.BlockSize() * 2
		if cols < 8 {
			cols = 8
		}
		size, _ := typ.RowBytes(cols * 3)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(j*7 + i)
		}
		tensors = append(tensors, WriteTensor{TensorSpec{Name: "t." + typ.String(), Type: typ, Dims: []int{cols, 3}}, data})
	}
	path := filepath.Join(t.TempDir(), "x.gguf")
	if err := WriteFile(path, meta, tensors); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Alignment != 64 || len(f.Metadata) != len(meta) {
		t.Fatalf("alignment %d, %d keys", f.Alignment, len(f.Metadata))
	}
	for i, kv := range meta {
		got := f.Metadata[i]
		if got.Key != kv.Key || got.Value.Type != kv.Value.Type || got.Value.Elem != kv.Value.Elem || !equalAny(got.Value.V, kv.Value.V) {
			t.Errorf("%s: %+v, wrote %+v", kv.Key, got.Value, kv.Value)
		}
	}
	for _, w := range tensors {
		tn, ok := f.Tensor(w.Name)
		if !ok || tn.Type != w.Type || !bytes.Equal(tn.Data, w.Data) || tn.Offset%64 != 0 {
			t.Errorf("%s: %+v", w.Name, tn)
		}
	}
	if v, err := f.Int("u32", 0, math.MaxInt64); err != nil || v != 1<<31 {
		t.Errorf("u32: %d %v", v, err)
	}
	if _, err := f.Int("i32", 0, 10); err == nil || !strings.Contains(err.Error(), "i32") {
		t.Errorf("range: %v", err)
	}
	if _, err := f.String("u8"); err == nil || !strings.Contains(err.Error(), "u8 is a uint8") {
		t.Errorf("type: %v", err)
	}
	if _, err := f.Strings("missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing: %v", err)
	}
}

func equalAny(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// header builds a file from raw pieces for the hostile cases.
type header struct{ b []byte }

func (h *header) u32(v uint32) *header {
	h.b = append(h.b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	return h
}
func (h *header) u64(v uint64) *header { return h.u32(uint32(v)).u32(uint32(v >> 32)) }
func (h *header) str(s string) *header { h.u64(uint64(len(s))); h.b = append(h.b, s...); return h }

func start(tensors, kvs uint64) *header {
	h := &header{b: []byte(Magic)}
	return h.u32(3).u64(tensors).u64(kvs)
}

// TestHostile: malformed headers get errors that name what is wrong, wrap
// ErrFormat, and allocate nothing in proportion to what they declare.
func TestHostile(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(refDir, "small-gemma3-Q4_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := Parse(good)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a GGUF file"},
		{"magic", []byte("GGUX\x03\x00\x00\x00"), "not a GGUF file"},
		{"version 1", (&header{b: []byte(Magic)}).u32(1).b, "version 1 is not supported"},
		{"big-endian", (&header{b: []byte(Magic)}).u32(3 << 24).b, "big-endian"},
		{"huge kv count", start(0, 1<<62).b, "metadata entries do not fit"},
		{"huge tensor count", start(1<<40, 0).b, "tensors do not fit"},
		{"key past end", append(start(0, 1).u64(1<<40).b, make([]byte, 16)...), "past the end of the file"},
		{"unknown value type", start(0, 1).str("k").u32(99).u64(0).b, "unknown type 99"},
		{"huge array", start(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint32)).u64(1 << 60).b, "declares 1152921504606846976 elements"},
		{"huge string array", start(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1 << 40).u64(0).b, "more than the file holds"},
		{"nested array", start(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeArray)).u64(0).b, "array of arrays"},
		{"bad bool", append(start(0, 1).str("k").u32(uint32(TypeBool)).b, 2), "bool of value 2"},
		{"duplicate key", start(0, 2).str("k").u32(uint32(TypeUint8)).u32(0).str("k").u32(uint32(TypeUint8)).u32(0).b[:0:0], ""},
		{"alignment", append(start(0, 1).str("general.alignment").u32(uint32(TypeUint32)).u32(3).b, make([]byte, 32)...), "general.alignment must be"},
		{"dims", append(start(1, 0).str("t").u32(5).b, make([]byte, 40)...), "5 dimensions"},
		{"shape overflow", append(start(1, 0).str("t").u32(2).u64(1<<40).u64(1<<40).b, make([]byte, 40)...), "impossible shape"},
		{"unsupported type", append(start(1, 0).str("t").u32(1).u64(32).u32(16).u64(0).b, make([]byte, 40)...), "IQ2_XXS, which is not supported"},
		{"partial block", append(start(1, 0).str("t").u32(1).u64(33).u32(uint32(Q8_0)).u64(0).b, make([]byte, 80)...), "not a whole number of Q8_0 blocks"},
		{"past end", append(start(1, 0).str("t").u32(1).u64(1024).u32(uint32(F32)).u64(0).b, make([]byte, 64)...), "runs past the end"},
		{"misaligned", append(start(1, 0).str("t").u32(1).u64(1).u32(uint32(F32)).u64(4).b, make([]byte, 64)...), "not a multiple of the alignment"},
		{"duplicate tensor", append(start(2, 0).str("t").u32(1).u64(1).u32(0).u64(0).str("t").u32(1).u64(1).u32(0).u64(0).b, make([]byte, 64)...), "tensor t appears twice"},
		{"long name", append(start(1, 0).str(strings.Repeat("n", 300)).b, make([]byte, 64)...), "300 bytes long"},
		{"truncated", good[:len(good)-100], "runs past the end"},
	}
	cases[12].data = start(0, 2).str("k").u32(uint32(TypeUint8)).b
	cases[12].data = append(cases[12].data, 0)
	cases[12].data = (&header{b: cases[12].data}).str("k").u32(uint32(TypeUint8)).b
	cases[12].data = append(cases[12].data, 0)
	cases[12].want = "metadata key k appears twice"
	for _, c := range cases {
		_, err := Parse(c.data)
		if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// Prefixes of a real header (500 of them) fail cleanly.
	for n := 0; n < f.DataOffset; n += max(f.DataOffset/500, 1) {
		if _, err := Parse(good[:n]); err == nil || !errors.Is(err, ErrFormat) {
			t.Fatalf("prefix %d: %v", n, err)
		}
	}
}
