package gguf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any bytes either parse or fail with ErrFormat, never panic;
// a file that parses has every tensor inside it, and writes back into a
// file that parses to the same metadata and tensors.
func FuzzParse(f *testing.F) {
	small := smallFile(f)
	f.Add(small)
	f.Add(small[:len(small)/2])
	f.Add(start(0, 0).b)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		for _, tn := range p.Tensors {
			if p.DataOffset+tn.Offset+len(tn.Data) > len(data) {
				t.Fatalf("tensor %s outside the file", tn.Name)
			}
		}
		var buf bytes.Buffer
		if err := rewrite(&buf, p); err != nil {
			return // a value Go holds but GGUF cannot (none expected)
		}
		q, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if len(q.Metadata) != len(p.Metadata) || len(q.Tensors) != len(p.Tensors) {
			t.Fatalf("rewritten: %d keys %d tensors, was %d %d", len(q.Metadata), len(q.Tensors), len(p.Metadata), len(p.Tensors))
		}
		for i, tn := range q.Tensors {
			if tn.Name != p.Tensors[i].Name || !bytes.Equal(tn.Data, p.Tensors[i].Data) {
				t.Fatalf("tensor %d differs after rewriting", i)
			}
		}
	})
}

// smallFile is a file with a few keys and tensors, as a seed.
func smallFile(f *testing.F) []byte {
	path := filepath.Join(f.TempDir(), "s.gguf")
	err := WriteFile(path, []KV{{"general.architecture", Of("gemma3")}, {"a", ArrayOf([]string{"x", "y"})}, {"n", Of(uint32(3))}},
		[]WriteTensor{
			{TensorSpec{"w", Q8_0, []int{32, 2}}, make([]byte, 68)},
			{TensorSpec{"n", F32, []int{4}}, make([]byte, 16)},
		})
	if err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
