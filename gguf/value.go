package gguf

import (
	"fmt"
	"math"
	"strconv"
)

// ValueType is a metadata value's type (enum gguf_type).
type ValueType uint32

// The metadata value types.
const (
	TypeUint8 ValueType = iota
	TypeInt8
	TypeUint16
	TypeInt16
	TypeUint32
	TypeInt32
	TypeFloat32
	TypeBool
	TypeString
	TypeArray
	TypeUint64
	TypeInt64
	TypeFloat64
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("value type %d", uint32(t))
}

// size is the bytes of a fixed-size value (0 for string and array).
func (t ValueType) size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Scalar is a Go type a metadata value (or an array's element) is held in.
type Scalar interface {
	~uint8 | ~int8 | ~uint16 | ~int16 | ~uint32 | ~int32 | ~float32 | ~bool | ~string | ~uint64 | ~int64 | ~float64
}

// Value is a metadata value: V holds a uint8, int8, uint16, int16, uint32,
// int32, float32, bool, string, uint64, int64 or float64 as Type says, or for
// an array a slice of Elem's Go type ([]string, []float32, []int32...).
type Value struct {
	Type ValueType
	Elem ValueType // the elements' type when Type is TypeArray
	V    any
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

func typeOf(v any) (ValueType, bool) {
	switch v.(type) {
	case uint8:
		return TypeUint8, true
	case int8:
		return TypeInt8, true
	case uint16:
		return TypeUint16, true
	case int16:
		return TypeInt16, true
	case uint32:
		return TypeUint32, true
	case int32:
		return TypeInt32, true
	case float32:
		return TypeFloat32, true
	case bool:
		return TypeBool, true
	case string:
		return TypeString, true
	case uint64:
		return TypeUint64, true
	case int64:
		return TypeInt64, true
	case float64:
		return TypeFloat64, true
	}
	return 0, false
}

// Of is the metadata value v (of a Scalar type, not a named one).
func Of[T Scalar](v T) Value {
	t, ok := typeOf(any(v))
	if !ok {
		panic(fmt.Sprintf("gguf.Of: %T is not one of the metadata types", v))
	}
	return Value{Type: t, V: any(v)}
}

// ArrayOf is the metadata array of vs.
func ArrayOf[T Scalar](vs []T) Value {
	var zero T
	t, ok := typeOf(any(zero))
	if !ok {
		panic(fmt.Sprintf("gguf.ArrayOf: %T is not one of the metadata types", zero))
	}
	return Value{Type: TypeArray, Elem: t, V: any(vs)}
}

// Len is an array's length (0 for a scalar).
func (v Value) Len() int {
	switch s := v.V.(type) {
	case []uint8:
		return len(s)
	case []int8:
		return len(s)
	case []uint16:
		return len(s)
	case []int16:
		return len(s)
	case []uint32:
		return len(s)
	case []int32:
		return len(s)
	case []float32:
		return len(s)
	case []bool:
		return len(s)
	case []string:
		return len(s)
	case []uint64:
		return len(s)
	case []int64:
		return len(s)
	case []float64:
		return len(s)
	}
	return 0
}

// asInt is an integer value as int64 (ok false for another type or a
// uint64 beyond int64).
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// asFloat is a numeric value as float64; a float32 becomes the float64 of
// its shortest decimal (1e-6, not 9.99999997e-07), as it was written.
func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float32:
		d, err := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return d, err == nil
	case float64:
		return x, true
	}
	if i, ok := asInt(v); ok {
		return float64(i), true
	}
	return 0, false
}
