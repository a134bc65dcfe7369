package gguf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/medgemma/medgemma/internal/mapped"
)

// Magic is the first four bytes of a GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the data alignment of a file without
// general.alignment.
const DefaultAlignment = 32

// Limits on what a file may declare, beyond fitting in the file: far above
// any model (Gemma 3 27B has 808 text tensors, about 40 metadata keys).
const (
	maxTensors = 1 << 16
	maxKVs     = 1 << 16
	maxName    = 256 // tensor name bytes (llama.cpp writes at most 63)
	maxDims    = 4
)

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("malformed GGUF")

// Tensor is one tensor of a file. Data aliases the file's bytes: valid until
// the File is closed, never to be written.
type Tensor struct {
	Name string
	Type Type
	// Dims is the shape in ggml's order: Dims[0] is the length of a row (the
	// fastest-varying dimension), Dims[1] the number of rows of a matrix.
	Dims   []int
	Offset int // from the start of the data section
	Data   []byte
}

// Elements is the number of elements.
func (t *Tensor) Elements() int {
	n := 1
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Rows is the number of rows: the product of the dimensions after the first.
func (t *Tensor) Rows() int {
	if len(t.Dims) == 0 {
		return 0
	}
	return t.Elements() / max(t.Dims[0], 1)
}

// File is an opened GGUF file.
type File struct {
	Path      string
	Version   uint32
	Alignment int
	Metadata  []KV      // in file order
	Tensors   []*Tensor // in file order
	// DataOffset is where the data section starts in the file.
	DataOffset int

	byKey   map[string]int
	byName  map[string]*Tensor
	release func() error
}

// Open maps the GGUF file at path and reads its header.
func Open(path string) (*File, error) { return OpenContext(context.Background(), path, false) }

// OpenContext opens the file at path, mapped or (resident) read into memory
// with ctx checked between chunks.
func OpenContext(ctx context.Context, path string, resident bool) (*File, error) {
	data, release, err := mapped.Open(ctx, path, resident)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Path, f.release = path, release
	return f, nil
}

// Close releases the file's bytes; its tensors' Data must not be used after.
func (f *File) Close() error {
	if f.release == nil {
		return nil
	}
	err := f.release()
	f.release = nil
	return err
}

// Tensor returns the tensor of that name.
func (f *File) Tensor(name string) (*Tensor, bool) {
	t, ok := f.byName[name]
	return t, ok
}

// Parse reads a GGUF file held in memory; the tensors alias data.
func Parse(data []byte) (*File, error) {
	r := &reader{b: data}
	if len(data) < 4 || string(data[:4]) != Magic {
		return nil, fmt.Errorf("%w: not a GGUF file (no %q magic)", ErrFormat, Magic)
	}
	r.pos = 4
	f := &File{Alignment: DefaultAlignment, byKey: map[string]int{}, byName: map[string]*Tensor{}, release: func() error { return nil }}
	var err error
	if f.Version, err = r.u32("the version"); err != nil {
		return nil, err
	}
	switch {
	case f.Version == 2 || f.Version == 3:
	case f.Version&0xffff == 0 && f.Version != 0:
		return nil, fmt.Errorf("%w: a big-endian file (version %d byte-swapped) is not supported", ErrFormat, bswap(f.Version))
	default:
		return nil, fmt.Errorf("%w: version %d is not supported (2 and 3 are)", ErrFormat, f.Version)
	}
	nTensors, err := r.u64("the tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := r.u64("the metadata count")
	if err != nil {
		return nil, err
	}
	// Each entry takes at least 13 bytes (key length, type, a byte), each
	// tensor info at least 28: counts beyond the file are refused before
	// anything is sized by them.
	if nKV > maxKVs || nKV > uint64(r.left()/13) {
		return nil, fmt.Errorf("%w: %d metadata entries do not fit (the limit is %d)", ErrFormat, nKV, min(maxKVs, r.left()/13))
	}
	if nTensors > maxTensors || nTensors > uint64(r.left()/28) {
		return nil, fmt.Errorf("%w: %d tensors do not fit (the limit is %d)", ErrFormat, nTensors, min(maxTensors, r.left()/28))
	}
	f.Metadata = make([]KV, 0, nKV)
	for i := range int(nKV) {
		key, err := r.str(fmt.Sprintf("the key of metadata entry %d", i))
		if err != nil {
			return nil, err
		}
		if _, dup := f.byKey[key]; dup {
			return nil, fmt.Errorf("%w: metadata key %s appears twice", ErrFormat, key)
		}
		v, err := r.value(key)
		if err != nil {
			return nil, err
		}
		f.byKey[key] = len(f.Metadata)
		f.Metadata = append(f.Metadata, KV{key, v})
	}
	if v, ok := f.Get("general.alignment"); ok {
		a, ok := v.V.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 || a > 1<<20 {
			return nil, fmt.Errorf("%w: general.alignment must be a uint32 power of two up to 1 MiB, not %s %v", ErrFormat, v.Type, v.V)
		}
		f.Alignment = int(a)
	}
	f.Tensors = make([]*Tensor, 0, nTensors)
	for i := range int(nTensors) {
		t, err := r.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		if _, dup := f.byName[t.Name]; dup {
			return nil, fmt.Errorf("%w: tensor %s appears twice", ErrFormat, t.Name)
		}
		f.byName[t.Name] = t
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = alignUp(r.pos, f.Alignment)
	if f.DataOffset > len(data) && len(f.Tensors) > 0 {
		return nil, fmt.Errorf("%w: the data section would start at byte %d of a %d-byte file", ErrFormat, f.DataOffset, len(data))
	}
	for _, t := range f.Tensors {
		size, err := t.Type.RowBytes(t.Dims[0])
		if err != nil {
			return nil, fmt.Errorf("%w: tensor %s: %v", ErrFormat, t.Name, err)
		}
		rows := t.Rows()
		if t.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("%w: tensor %s starts at offset %d, not a multiple of the alignment %d", ErrFormat, t.Name, t.Offset, f.Alignment)
		}
		avail := len(data) - f.DataOffset
		if t.Offset > avail || (size > 0 && rows > (avail-t.Offset)/size) {
			return nil, fmt.Errorf("%w: tensor %s (%s %v, %d rows of %d bytes at offset %d) runs past the end of the file (%d data bytes)", ErrFormat, t.Name, t.Type, t.Dims, rows, size, t.Offset, avail)
		}
		start := f.DataOffset + t.Offset
		t.Data = data[start : start+rows*size : start+rows*size]
	}
	return f, nil
}

func bswap(v uint32) uint32 {
	return v>>24 | v>>8&0xff00 | v<<8&0xff0000 | v<<24
}

func alignUp(n, a int) int { return (n + a - 1) / a * a }

// reader walks the header, checking every length against what is left.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) left() int { return len(r.b) - r.pos }

func (r *reader) need(n int, what string) error {
	if n < 0 || n > r.left() {
		return fmt.Errorf("%w: the file ends in %s (at byte %d)", ErrFormat, what, r.pos)
	}
	return nil
}

func (r *reader) u32(what string) (uint32, error) {
	if err := r.need(4, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(r.b[r.pos:])
	r.pos += 4
	return v, nil
}

func (r *reader) u64(what string) (uint64, error) {
	if err := r.need(8, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(r.b[r.pos:])
	r.pos += 8
	return v, nil
}

func (r *reader) str(what string) (string, error) {
	n, err := r.u64(what)
	if err != nil {
		return "", err
	}
	if n > uint64(r.left()) {
		return "", fmt.Errorf("%w: %s is %d bytes long, past the end of the file", ErrFormat, what, n)
	}
	s := string(r.b[r.pos : r.pos+int(n)])
	r.pos += int(n)
	return s, nil
}

// value reads a typed value of metadata key.
func (r *reader) value(key string) (Value, error) {
	t, err := r.u32("the type of metadata " + key)
	if err != nil {
		return Value{}, err
	}
	vt := ValueType(t)
	if vt != TypeArray {
		v, err := r.scalar(vt, key)
		return Value{Type: vt, V: v}, err
	}
	e, err := r.u32("the element type of metadata " + key)
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(e)
	n, err := r.u64("the length of metadata " + key)
	if err != nil {
		return Value{}, err
	}
	size := elem.size()
	switch {
	case elem == TypeArray:
		return Value{}, fmt.Errorf("%w: metadata %s is an array of arrays, which is not supported", ErrFormat, key)
	case elem == TypeString:
		size = 8 // at least its length
	case size == 0:
		return Value{}, fmt.Errorf("%w: metadata %s has unknown element type %d", ErrFormat, key, e)
	}
	if n > uint64(r.left()/size) {
		return Value{}, fmt.Errorf("%w: metadata %s declares %d elements of %s, more than the file holds", ErrFormat, key, n, elem)
	}
	v, err := r.array(elem, int(n), key)
	return Value{Type: TypeArray, Elem: elem, V: v}, err
}

func (r *reader) scalar(t ValueType, key string) (any, error) {
	what := "metadata " + key
	if t == TypeString {
		return r.str(what)
	}
	size := t.size()
	if size == 0 {
		return nil, fmt.Errorf("%w: metadata %s has unknown type %d", ErrFormat, key, uint32(t))
	}
	v, err := r.array(t, 1, key)
	if err != nil {
		return nil, err
	}
	return first(v), nil
}

// first is the one element of a slice of a metadata type.
func first(v any) any {
	switch s := v.(type) {
	case []uint8:
		return s[0]
	case []int8:
		return s[0]
	case []bool:
		return s[0]
	case []uint16:
		return s[0]
	case []int16:
		return s[0]
	case []uint32:
		return s[0]
	case []int32:
		return s[0]
	case []float32:
		return s[0]
	case []uint64:
		return s[0]
	case []int64:
		return s[0]
	default:
		return v.([]float64)[0]
	}
}

// array reads n elements of type t (n already checked against the file for
// arrays): strings one by one, fixed-size values decoded straight from the
// bytes into a slice of their Go type (one allocation, whatever n).
func (r *reader) array(t ValueType, n int, key string) (any, error) {
	if t == TypeString {
		out := make([]string, n)
		for i := range out {
			s, err := r.str("metadata " + key)
			if err != nil {
				return nil, fmt.Errorf("%w (element %d)", err, i)
			}
			out[i] = s
		}
		return out, nil
	}
	size := t.size()
	if err := r.need(n*size, "metadata "+key); err != nil {
		return nil, err
	}
	b := r.b[r.pos : r.pos+n*size]
	r.pos += n * size
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return decode(b, 1, func(b []byte) uint8 { return b[0] }), nil
	case TypeInt8:
		return decode(b, 1, func(b []byte) int8 { return int8(b[0]) }), nil
	case TypeBool:
		for i, v := range b {
			if v > 1 {
				return nil, fmt.Errorf("%w: metadata %s is a bool of value %d (element %d)", ErrFormat, key, v, i)
			}
		}
		return decode(b, 1, func(b []byte) bool { return b[0] == 1 }), nil
	case TypeUint16:
		return decode(b, 2, le.Uint16), nil
	case TypeInt16:
		return decode(b, 2, func(b []byte) int16 { return int16(le.Uint16(b)) }), nil
	case TypeUint32:
		return decode(b, 4, le.Uint32), nil
	case TypeInt32:
		return decode(b, 4, func(b []byte) int32 { return int32(le.Uint32(b)) }), nil
	case TypeFloat32:
		return decode(b, 4, func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) }), nil
	case TypeUint64:
		return decode(b, 8, le.Uint64), nil
	case TypeInt64:
		return decode(b, 8, func(b []byte) int64 { return int64(le.Uint64(b)) }), nil
	default: // TypeFloat64
		return decode(b, 8, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) }), nil
	}
}

// decode converts each size bytes of b with conv.
func decode[T any](b []byte, size int, conv func([]byte) T) []T {
	out := make([]T, len(b)/size)
	for i := range out {
		out[i] = conv(b[i*size:])
	}
	return out
}

// tensorInfo reads the info of tensor i: name, dims, type, offset.
func (r *reader) tensorInfo(i int) (*Tensor, error) {
	name, err := r.str(fmt.Sprintf("the name of tensor %d", i))
	if err != nil {
		return nil, err
	}
	if len(name) > maxName {
		return nil, fmt.Errorf("%w: the name of tensor %d is %d bytes long (the limit is %d)", ErrFormat, i, len(name), maxName)
	}
	nd, err := r.u32("the dimensions of tensor " + name)
	if err != nil {
		return nil, err
	}
	if nd == 0 || nd > maxDims {
		return nil, fmt.Errorf("%w: tensor %s has %d dimensions (1 to %d are allowed)", ErrFormat, name, nd, maxDims)
	}
	t := &Tensor{Name: name, Dims: make([]int, nd)}
	elems := uint64(1)
	for d := range t.Dims {
		v, err := r.u64("the shape of tensor " + name)
		if err != nil {
			return nil, err
		}
		// No tensor can have more elements than 2^50 (a petabyte of
		// 4-bit weights): the product is checked as it grows.
		if v > 1<<50 || (v > 0 && elems > (1<<50)/v) {
			return nil, fmt.Errorf("%w: tensor %s has an impossible shape (dimension %d is %d)", ErrFormat, name, d, v)
		}
		elems *= v
		t.Dims[d] = int(v)
	}
	typ, err := r.u32("the type of tensor " + name)
	if err != nil {
		return nil, err
	}
	t.Type = Type(typ)
	if t.Type.BlockSize() == 0 {
		return nil, fmt.Errorf("%w: tensor %s has type %s, which is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)", ErrFormat, name, t.Type)
	}
	off, err := r.u64("the offset of tensor " + name)
	if err != nil {
		return nil, err
	}
	if off > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: tensor %s starts at offset %d, past the end of the file", ErrFormat, name, off)
	}
	t.Offset = int(off)
	return t, nil
}
