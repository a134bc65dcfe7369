package gguf

import (
	"fmt"

	"github.com/medgemma/medgemma/kernels"
)

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

// dtypes are the types this package reads and writes, as the kernels know
// them (their block layouts live there): what GGUF files of Gemma 3 hold in
// F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, Q5_K_M and Q6_K.
var dtypes = map[Type]kernels.DType{
	F32: kernels.F32, F16: kernels.F16, BF16: kernels.BF16, Q8_0: kernels.Q8_0,
	Q4_0: kernels.Q4_0, Q4_K: kernels.Q4_K, Q5_K: kernels.Q5_K, Q6_K: kernels.Q6_K,
}

// DType is the kernels' dtype of a tensor type (ok false for a type not read
// here).
func (t Type) DType() (kernels.DType, bool) {
	d, ok := dtypes[t]
	return d, ok
}

// BlockSize is the elements per block (0 for a type this package does not
// read).
func (t Type) BlockSize() int {
	if d, ok := dtypes[t]; ok {
		return kernels.BlockSize(d)
	}
	return 0
}

// TypeSize is the bytes per block (0 for a type this package does not
// read).
func (t Type) TypeSize() int {
	if d, ok := dtypes[t]; ok {
		return kernels.RowBytes(d, kernels.BlockSize(d))
	}
	return 0
}

// RowBytes is the bytes of a row of n elements, or an error when n is not
// a whole number of blocks or the type is not read here.
func (t Type) RowBytes(n int) (int, error) {
	d, ok := dtypes[t]
	if !ok {
		return 0, fmt.Errorf("tensor type %s is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)", t)
	}
	if bs := kernels.BlockSize(d); n%bs != 0 {
		return 0, fmt.Errorf("a row of %d elements is not a whole number of %s blocks of %d", n, t, bs)
	}
	return kernels.RowBytes(d, n), nil
}
