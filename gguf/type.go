package gguf

import "fmt"

// Type is a tensor's ggml type (enum ggml_type).
type Type uint32

// The ggml types. Those with a block layout here (BlockSize > 0) can be
// read; the others are named in errors.
const (
	F32  Type = 0
	F16  Type = 1
	Q4_0 Type = 2
	Q4_1 Type = 3
	Q5_0 Type = 6
	Q5_1 Type = 7
	Q8_0 Type = 8
	Q8_1 Type = 9
	Q2_K Type = 10
	Q3_K Type = 11
	Q4_K Type = 12
	Q5_K Type = 13
	Q6_K Type = 14
	Q8_K Type = 15
	I8   Type = 24
	I16  Type = 25
	I32  Type = 26
	I64  Type = 27
	F64  Type = 28
	BF16 Type = 30
)

var typeNames = map[Type]string{
	F32: "F32", F16: "F16", Q4_0: "Q4_0", Q4_1: "Q4_1", Q5_0: "Q5_0", Q5_1: "Q5_1",
	Q8_0: "Q8_0", Q8_1: "Q8_1", Q2_K: "Q2_K", Q3_K: "Q3_K", Q4_K: "Q4_K", Q5_K: "Q5_K",
	Q6_K: "Q6_K", Q8_K: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
	20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", I8: "I8", I16: "I16", I32: "I32",
	I64: "I64", F64: "F64", 29: "IQ1_M", BF16: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// layout is a block of blockSize elements stored in typeSize bytes.
type layout struct{ blockSize, typeSize int }

// layouts are the types this package reads and writes: what GGUF files of
// Gemma 3 hold in F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, Q5_K_M and Q6_K.
var layouts = map[Type]layout{
	F32:  {1, 4},
	F16:  {1, 2},
	BF16: {1, 2},
	Q8_0: {32, 34},
	Q4_0: {32, 18},
	Q4_K: {256, 144},
	Q5_K: {256, 176},
	Q6_K: {256, 210},
}

// BlockSize is the elements per block (0 for a type this package does not
// read).
func (t Type) BlockSize() int { return layouts[t].blockSize }

// TypeSize is the bytes per block (0 for a type this package does not
// read).
func (t Type) TypeSize() int { return layouts[t].typeSize }

// RowBytes is the bytes of a row of n elements, or an error when n is not
// a whole number of blocks or the type is not read here.
func (t Type) RowBytes(n int) (int, error) {
	l, ok := layouts[t]
	if !ok {
		return 0, fmt.Errorf("tensor type %s is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)", t)
	}
	if n%l.blockSize != 0 {
		return 0, fmt.Errorf("a row of %d elements is not a whole number of %s blocks of %d", n, t, l.blockSize)
	}
	return n / l.blockSize * l.typeSize, nil
}
