package safetensors

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/medgemma/medgemma/internal/mapped"
	"github.com/medgemma/medgemma/kernels"
)

// maxHeader bounds the JSON header, as the reference implementation does.
const maxHeader = 100 << 20

// Tensor is one named tensor. Data aliases the mapped file: it is valid until
// the File is closed and must not be written.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Elements is the number of elements (1 for a scalar).
func (t *Tensor) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// BF16 returns the data as raw bfloat16 values. It fails unless the dtype is
// BF16.
func (t *Tensor) BF16() ([]uint16, error) {
	return view[uint16](t, BF16)
}

// F16 returns the data as raw IEEE half values.
func (t *Tensor) F16() ([]uint16, error) {
	return view[uint16](t, F16)
}

// F32 returns the data as float32 values without copying.
func (t *Tensor) F32() ([]float32, error) {
	return view[float32](t, F32)
}

func view[T uint16 | float32](t *Tensor, want DType) ([]T, error) {
	if t.DType != want {
		return nil, fmt.Errorf("tensor %s is %s, not %s", t.Name, t.DType, want)
	}
	v, err := mapped.View[T](t.Data)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return v, nil
}

// Float32s converts the tensor to float32 (a copy), from BF16, F16 or F32.
func (t *Tensor) Float32s() ([]float32, error) {
	out := make([]float32, t.Elements())
	switch t.DType {
	case BF16:
		for i := range out {
			out[i] = kernels.BF16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case F16:
		for i := range out {
			out[i] = kernels.F16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	default:
		return nil, fmt.Errorf("tensor %s: %s cannot be converted to float32", t.Name, t.DType)
	}
	return out, nil
}

// File is one opened .safetensors file.
type File struct {
	Path     string
	Metadata map[string]string
	tensors  map[string]*Tensor
	names    []string
	unmap    func() error
}

// Open maps a .safetensors file and validates its header.
func Open(path string) (*File, error) { return open(context.Background(), path, false) }

// OpenResident reads a .safetensors file into memory (see OpenDirResident).
func OpenResident(path string) (*File, error) { return open(context.Background(), path, true) }

func open(ctx context.Context, path string, resident bool) (*File, error) {
	data, unmap, err := mapped.Open(ctx, path, resident)
	if err != nil {
		return nil, err
	}
	sf, err := parse(data)
	if err != nil {
		unmap()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sf.Path, sf.unmap = path, unmap
	return sf, nil
}

// Parse reads a safetensors file held in memory (the tensors alias data).
func Parse(data []byte) (*File, error) {
	f, err := parse(data)
	if err != nil {
		return nil, err
	}
	f.unmap = func() error { return nil }
	return f, nil
}

type headerEntry struct {
	DType   DType    `json:"dtype"`
	Shape   []int64  `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

func parse(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("%d bytes: too short for a safetensors header", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxHeader {
		return nil, fmt.Errorf("header length %d is over the %d-byte limit", n, maxHeader)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("header length %d runs past the end of the file (%d bytes): truncated?", n, len(data))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &raw); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	body := data[8+n:]
	f := &File{tensors: map[string]*Tensor{}}
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("header __metadata__: %w", err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		if err := e.DType.check(); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		elems := int64(1)
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			if d < 0 || (d > 0 && elems > math.MaxInt64/d/8) {
				return nil, fmt.Errorf("tensor %s: invalid shape %v", name, e.Shape)
			}
			elems *= d
			shape[i] = int(d)
		}
		b, end := e.Offsets[0], e.Offsets[1]
		if b < 0 || end < b || end > int64(len(body)) {
			return nil, fmt.Errorf("tensor %s: data_offsets [%d, %d] outside the %d data bytes", name, b, end, len(body))
		}
		if want := elems * int64(e.DType.Size()); end-b != want {
			return nil, fmt.Errorf("tensor %s: %d bytes, but %s %v needs %d", name, end-b, e.DType, e.Shape, want)
		}
		f.tensors[name] = &Tensor{Name: name, DType: e.DType, Shape: shape, Data: body[b:end:end]}
		spans = append(spans, span{name, b, end})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, fmt.Errorf("tensors %s and %s overlap", spans[i-1].name, spans[i].name)
		}
	}
	for _, s := range spans {
		f.names = append(f.names, s.name)
	}
	return f, nil
}

// Tensor returns the named tensor, or nil.
func (f *File) Tensor(name string) *Tensor { return f.tensors[name] }

// Names lists the tensors in file order.
func (f *File) Names() []string { return f.names }

// Close unmaps the file; its tensors must not be used afterwards.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap = nil
	return err
}
