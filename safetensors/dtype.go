package safetensors

import "fmt"

// DType is a tensor element type as the header spells it.
type DType string

// The element types of the safetensors format.
const (
	BF16 DType = "BF16"
	F16  DType = "F16"
	F32  DType = "F32"
	F64  DType = "F64"
	I8   DType = "I8"
	U8   DType = "U8"
	I16  DType = "I16"
	U16  DType = "U16"
	I32  DType = "I32"
	U32  DType = "U32"
	I64  DType = "I64"
	U64  DType = "U64"
	Bool DType = "BOOL"
	F8E4 DType = "F8_E4M3"
	F8E5 DType = "F8_E5M2"
)

// Size is the number of bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case I8, U8, Bool, F8E4, F8E5:
		return 1
	case BF16, F16, I16, U16:
		return 2
	case F32, I32, U32:
		return 4
	case F64, I64, U64:
		return 8
	}
	return 0
}

func (d DType) check() error {
	if d.Size() == 0 {
		return fmt.Errorf("unknown dtype %q", string(d))
	}
	return nil
}
