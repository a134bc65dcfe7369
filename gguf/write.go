package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// TensorSpec is a tensor to be written: its data comes later, in order,
// through Writer.WriteTensor.
type TensorSpec struct {
	Name string
	Type Type
	Dims []int // ggml order: Dims[0] is the row length
}

// Writer writes a GGUF v3 file: NewWriter writes the header (metadata and
// tensor infos, offsets computed from the specs), then each tensor's data
// is written in the order of the specs, padded to the alignment. Tensors
// can so be produced one at a time (a quantizer streaming a checkpoint).
type Writer struct {
	w     *bufio.Writer
	specs []TensorSpec
	sizes []int
	align int
	next  int
}

// NewWriter writes the header of a file holding metadata (in this order;
// general.alignment, a uint32 power of two, sets the alignment) and tensors.
func NewWriter(w io.Writer, metadata []KV, tensors []TensorSpec) (*Writer, error) {
	gw := &Writer{w: bufio.NewWriterSize(w, 1<<20), specs: tensors, align: DefaultAlignment}
	seen := map[string]bool{}
	for _, kv := range metadata {
		if seen[kv.Key] {
			return nil, fmt.Errorf("gguf: metadata key %s given twice", kv.Key)
		}
		seen[kv.Key] = true
		if kv.Key == "general.alignment" {
			a, ok := kv.Value.V.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return nil, fmt.Errorf("gguf: general.alignment must be a uint32 power of two, not %v", kv.Value.V)
			}
			gw.align = int(a)
		}
	}
	names := map[string]bool{}
	for _, t := range tensors {
		if names[t.Name] {
			return nil, fmt.Errorf("gguf: tensor %s given twice", t.Name)
		}
		names[t.Name] = true
		if len(t.Name) > maxName || len(t.Dims) == 0 || len(t.Dims) > maxDims {
			return nil, fmt.Errorf("gguf: tensor %s: a name of at most %d bytes and 1 to %d dimensions are needed", t.Name, maxName, maxDims)
		}
		n := 1
		for _, d := range t.Dims {
			if d < 0 {
				return nil, fmt.Errorf("gguf: tensor %s has shape %v", t.Name, t.Dims)
			}
			n *= d
		}
		size, err := t.Type.RowBytes(n)
		if err == nil && t.Dims[0]%max(t.Type.BlockSize(), 1) != 0 {
			err = fmt.Errorf("a row of %d elements is not a whole number of %s blocks of %d", t.Dims[0], t.Type, t.Type.BlockSize())
		}
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %s: %w", t.Name, err)
		}
		gw.sizes = append(gw.sizes, size)
	}
	e := &encoder{w: gw.w}
	e.bytes([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(metadata)))
	for _, kv := range metadata {
		e.str(kv.Key)
		if err := e.value(kv.Key, kv.Value); err != nil {
			return nil, err
		}
	}
	off := 0
	for i, t := range tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(uint64(d))
		}
		e.u32(uint32(t.Type))
		e.u64(uint64(off))
		off = alignUp(off+gw.sizes[i], gw.align)
	}
	e.pad(gw.align)
	return gw, e.err
}

// WriteTensor writes the data of the next tensor (exactly its size).
func (w *Writer) WriteTensor(data []byte) error {
	if w.next >= len(w.specs) {
		return errors.New("gguf: more tensors written than declared")
	}
	spec, size := w.specs[w.next], w.sizes[w.next]
	if len(data) != size {
		return fmt.Errorf("gguf: tensor %s: %d bytes given, %s %v takes %d", spec.Name, len(data), spec.Type, spec.Dims, size)
	}
	w.next++
	e := &encoder{w: w.w, n: 0}
	e.bytes(data)
	e.pad(w.align)
	return e.err
}

// WriteTensorFunc writes the data of the next tensor as fill writes it (in
// any number of pieces; exactly the tensor's size in all).
func (w *Writer) WriteTensorFunc(fill func(io.Writer) error) error {
	if w.next >= len(w.specs) {
		return errors.New("gguf: more tensors written than declared")
	}
	spec, size := w.specs[w.next], w.sizes[w.next]
	w.next++
	e := &encoder{w: w.w}
	if err := fill(e); err != nil {
		return err
	}
	if e.err == nil && e.n != size {
		return fmt.Errorf("gguf: tensor %s: %d bytes written, %s %v takes %d", spec.Name, e.n, spec.Type, spec.Dims, size)
	}
	e.pad(w.align)
	return e.err
}

// Close flushes the file; it fails if a declared tensor was not written.
func (w *Writer) Close() error {
	if w.next != len(w.specs) {
		return fmt.Errorf("gguf: %d of %d tensors written", w.next, len(w.specs))
	}
	return w.w.Flush()
}

// WriteTensor is a tensor and its data, for WriteFile.
type WriteTensor struct {
	TensorSpec
	Data []byte
}

// WriteFile writes a whole GGUF file at path.
func WriteFile(path string, metadata []KV, tensors []WriteTensor) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	specs := make([]TensorSpec, len(tensors))
	for i, t := range tensors {
		specs[i] = t.TensorSpec
	}
	w, err := NewWriter(f, metadata, specs)
	if err != nil {
		return err
	}
	for _, t := range tensors {
		if err := w.WriteTensor(t.Data); err != nil {
			return err
		}
	}
	return w.Close()
}

// encoder writes little-endian values, counting bytes (for the padding)
// and keeping the first error.
type encoder struct {
	w   io.Writer
	n   int
	err error
}

func (e *encoder) bytes(b []byte) {
	if e.err != nil {
		return
	}
	var k int
	k, e.err = e.w.Write(b)
	e.n += k
}

// Write makes an encoder an io.Writer (for WriteTensorFunc).
func (e *encoder) Write(b []byte) (int, error) {
	e.bytes(b)
	if e.err != nil {
		return 0, e.err
	}
	return len(b), nil
}

func (e *encoder) u32(v uint32) { e.bytes(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *encoder) u64(v uint64) { e.bytes(binary.LittleEndian.AppendUint64(nil, v)) }

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.bytes([]byte(s))
}

func (e *encoder) pad(align int) {
	if k := alignUp(e.n, align) - e.n; k > 0 {
		e.bytes(make([]byte, k))
	}
}

func (e *encoder) value(key string, v Value) error {
	e.u32(uint32(v.Type))
	if v.Type != TypeArray {
		return e.scalar(key, v.Type, v.V)
	}
	e.u32(uint32(v.Elem))
	e.u64(uint64(v.Len()))
	switch s := v.V.(type) {
	case []uint8:
		return encodeArray(e, key, v.Elem, s)
	case []int8:
		return encodeArray(e, key, v.Elem, s)
	case []uint16:
		return encodeArray(e, key, v.Elem, s)
	case []int16:
		return encodeArray(e, key, v.Elem, s)
	case []uint32:
		return encodeArray(e, key, v.Elem, s)
	case []int32:
		return encodeArray(e, key, v.Elem, s)
	case []float32:
		return encodeArray(e, key, v.Elem, s)
	case []bool:
		return encodeArray(e, key, v.Elem, s)
	case []string:
		return encodeArray(e, key, v.Elem, s)
	case []uint64:
		return encodeArray(e, key, v.Elem, s)
	case []int64:
		return encodeArray(e, key, v.Elem, s)
	case []float64:
		return encodeArray(e, key, v.Elem, s)
	}
	return fmt.Errorf("gguf: metadata %s: %T is not an array of a metadata type", key, v.V)
}

func encodeArray[T Scalar](e *encoder, key string, elem ValueType, s []T) error {
	for _, x := range s {
		if err := e.scalar(key, elem, x); err != nil {
			return err
		}
	}
	return nil
}

func (e *encoder) scalar(key string, t ValueType, v any) error {
	if got, ok := typeOf(v); !ok || got != t {
		return fmt.Errorf("gguf: metadata %s: a %T value for type %s", key, v, t)
	}
	switch x := v.(type) {
	case uint8:
		e.bytes([]byte{x})
	case int8:
		e.bytes([]byte{byte(x)})
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		e.bytes([]byte{b})
	case uint16:
		e.bytes(binary.LittleEndian.AppendUint16(nil, x))
	case int16:
		e.bytes(binary.LittleEndian.AppendUint16(nil, uint16(x)))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	}
	return nil
}
