package safetensors

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, []WriteTensor{
		{Name: "a", DType: F32, Shape: []int{2, 2}, Data: f32bytes(1, 2, 3, 4)},
		{Name: "b", DType: BF16, Shape: []int{3}, Data: []byte{0x80, 0x3f, 0x00, 0x40, 0x40, 0xc0}}, // 1, 2, -3
		{Name: "c", DType: F16, Shape: []int{2}, Fill: func(w io.Writer) error {
			_, err := w.Write([]byte{0x00, 0x3c, 0x01, 0x00}) // 1, smallest subnormal
			return err
		}},
		{Name: "s", DType: F32, Shape: nil, Data: f32bytes(7)},
	}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" || len(f.Names()) != 4 {
		t.Errorf("metadata %v names %v", f.Metadata, f.Names())
	}
	for name, want := range map[string][]float32{"a": {1, 2, 3, 4}, "b": {1, 2, -3}, "c": {1, float32(math.Ldexp(1, -24))}, "s": {7}} {
		got, err := f.Tensor(name).Float32s()
		if err != nil || len(got) != len(want) {
			t.Fatalf("%s: %v %v", name, got, err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
	if v, err := f.Tensor("a").F32(); err != nil || v[3] != 4 {
		t.Errorf("F32 view: %v %v", v, err)
	}
	if _, err := f.Tensor("a").BF16(); err == nil || !strings.Contains(err.Error(), "tensor a is F32, not BF16") {
		t.Errorf("wrong view: %v", err)
	}
}

func TestTinyCheckpoint(t *testing.T) {
	c, err := OpenDir(filepath.Join("..", "testdata", "models", "tiny-medgemma"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	names, err := os.ReadFile(filepath.Join("..", "testdata", "models", "tiny-medgemma", "tensor_names.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	if err := json.Unmarshal(names, &want); err != nil {
		t.Fatal(err)
	}
	if got := c.Names(); !slices.Equal(got, want) {
		t.Errorf("tensors %v\nwant %v", got, want)
	}
	e := c.Tensor("language_model.model.embed_tokens.weight")
	if e == nil || e.DType != BF16 || e.Shape[0] != 262208 || e.Shape[1] != 24 {
		t.Fatalf("embed_tokens: %+v", e)
	}
	v, err := e.BF16()
	if err != nil || len(v) != 262208*24 {
		t.Fatalf("bf16 view: %d %v", len(v), err)
	}
}

// TestResidentReadCancelled: reading resident weights stops at a cancelled
// context (internal/mapped tests the chunked reads themselves).
func TestResidentReadCancelled(t *testing.T) {
	dir := filepath.Join("..", "testdata", "models", "tiny-medgemma")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := OpenDirResidentContext(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestShards(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "m-1.safetensors"), []WriteTensor{{Name: "x", DType: F32, Shape: []int{1}, Data: f32bytes(1)}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "m-2.safetensors"), []WriteTensor{{Name: "y", DType: F32, Shape: []int{1}, Data: f32bytes(2)}}, nil); err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(dir, "model.safetensors.index.json")
	os.WriteFile(index, []byte(`{"metadata": {}, "weight_map": {"x": "m-1.safetensors", "y": "m-2.safetensors"}}`), 0o644)
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Tensor("y").Float32s(); got[0] != 2 || filepath.Base(c.File("x")) != "m-1.safetensors" {
		t.Errorf("shards: %v %s", got, c.File("x"))
	}
	c.Close()
	os.WriteFile(index, []byte(`{"weight_map": {"x": "m-2.safetensors", "y": "m-2.safetensors"}}`), 0o644)
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "tensor x should be in m-2.safetensors") {
		t.Errorf("wrong index: %v", err)
	}
	os.WriteFile(index, []byte(`{"weight_map": {"x": "../m-1.safetensors"}}`), 0o644)
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "not a file name") {
		t.Errorf("path in index: %v", err)
	}
	if _, err := OpenDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no model.safetensors") {
		t.Errorf("empty dir: %v", err)
	}
}

// header builds a file from a raw JSON header and n data bytes.
func header(h string, n int) []byte {
	b := make([]byte, 8, 8+len(h)+n)
	binary.LittleEndian.PutUint64(b, uint64(len(h)))
	return append(append(b, h...), make([]byte, n)...)
}

func TestBadHeaders(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"short", "abc", "too short"},
		{"huge header", string(binary.LittleEndian.AppendUint64(nil, 1<<40)), "over the"},
		{"truncated", string(header(`{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}`, 4)[:20]), "truncated"},
		{"not json", string(header(`{nope`, 0)), "header"},
		{"dtype", string(header(`{"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}`, 1)), `tensor a: unknown dtype "Q4"`},
		{"size", string(header(`{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}`, 4)), "tensor a: 4 bytes, but F32 [2] needs 8"},
		{"bounds", string(header(`{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}`, 4)), "outside the 4 data bytes"},
		{"overlap", string(header(`{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}`, 8)), "overlap"},
		{"negative", string(header(`{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}`, 4)), "invalid shape"},
	} {
		_, err := Parse([]byte(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	os.WriteFile(path, []byte("x"), 0o644)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("errors name the file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(header(`{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}`, 4))
	f.Add(header(`{"__metadata__": {"format": "pt"}, "b": {"dtype": "BF16", "shape": [2, 1], "data_offsets": [0, 4]}}`, 4))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := Parse(data)
		if err != nil {
			return
		}
		for _, n := range sf.Names() {
			tt := sf.Tensor(n)
			if len(tt.Data) != tt.Elements()*tt.DType.Size() {
				t.Fatalf("%s: %d bytes for %v", n, len(tt.Data), tt.Shape)
			}
			if tt.DType == F32 || tt.DType == BF16 || tt.DType == F16 {
				tt.Float32s()
			}
		}
	})
}
