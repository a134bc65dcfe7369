package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// WriteTensor is a tensor to write: Data holds Elements() x dtype-size bytes,
// or is nil when Fill produces the data.
type WriteTensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
	// Fill, when Data is nil, writes the tensor's bytes to w; it is how
	// random-weight models of real size are written without holding them in
	// memory.
	Fill func(w io.Writer) error
}

func (t *WriteTensor) size() int64 {
	n := int64(t.DType.Size())
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Write writes tensors in the given order with an 8-byte aligned data section.
func Write(w io.Writer, tensors []WriteTensor, metadata map[string]string) error {
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off int64
	for i := range tensors {
		t := &tensors[i]
		if err := t.DType.check(); err != nil {
			return fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		if t.Data != nil && int64(len(t.Data)) != t.size() {
			return fmt.Errorf("tensor %s: %d bytes for %s %v, want %d", t.Name, len(t.Data), t.DType, t.Shape, t.size())
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = map[string]any{"dtype": t.DType, "shape": shape, "data_offsets": [2]int64{off, off + t.size()}}
		off += t.size()
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for (8+len(h))%8 != 0 {
		h = append(h, ' ')
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(h)))
	bw.Write(n[:])
	bw.Write(h)
	for i := range tensors {
		t := &tensors[i]
		if t.Data != nil {
			if _, err := bw.Write(t.Data); err != nil {
				return err
			}
			continue
		}
		cw := &countingWriter{w: bw}
		if err := t.Fill(cw); err != nil {
			return fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		if cw.n != t.size() {
			return fmt.Errorf("tensor %s: Fill wrote %d bytes, want %d", t.Name, cw.n, t.size())
		}
	}
	return bw.Flush()
}

// WriteFile writes a .safetensors file.
func WriteFile(path string, tensors []WriteTensor, metadata map[string]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, tensors, metadata); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
