package gguf

import (
	"fmt"
	"math"
)

// Get returns the value of metadata key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.byKey[key]
	if !ok {
		return Value{}, false
	}
	return f.Metadata[i].Value, true
}

// get returns the value of key or an error naming it.
func (f *File) get(key string) (Value, error) {
	v, ok := f.Get(key)
	if !ok {
		return Value{}, fmt.Errorf("metadata key %s is missing", key)
	}
	return v, nil
}

func wrongType(key string, v Value, want string) error {
	if v.Type == TypeArray {
		return fmt.Errorf("metadata key %s is an array of %s, not %s", key, v.Elem, want)
	}
	return fmt.Errorf("metadata key %s is a %s, not %s", key, v.Type, want)
}

// String returns a string value.
func (f *File) String(key string) (string, error) {
	v, err := f.get(key)
	if err != nil {
		return "", err
	}
	s, ok := v.V.(string)
	if !ok {
		return "", wrongType(key, v, "a string")
	}
	return s, nil
}

// Int returns an integer value of any integer type, which must lie within
// lo..hi (an error names the key otherwise).
func (f *File) Int(key string, lo, hi int64) (int64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	i, ok := asInt(v.V)
	if !ok {
		return 0, wrongType(key, v, "an integer")
	}
	if i < lo || i > hi {
		return 0, fmt.Errorf("metadata key %s is %d, outside %d..%d", key, i, lo, hi)
	}
	return i, nil
}

// Float returns a number (float or integer) that must be finite.
func (f *File) Float(key string) (float64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	x, ok := asFloat(v.V)
	if !ok {
		return 0, wrongType(key, v, "a number")
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("metadata key %s is %v", key, x)
	}
	return x, nil
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.get(key)
	if err != nil {
		return false, err
	}
	b, ok := v.V.(bool)
	if !ok {
		return false, wrongType(key, v, "a bool")
	}
	return b, nil
}

// Strings returns an array of strings.
func (f *File) Strings(key string) ([]string, error) {
	return arrayValue[string](f, key, "an array of strings")
}

// Float32s returns an array of float32.
func (f *File) Float32s(key string) ([]float32, error) {
	return arrayValue[float32](f, key, "an array of float32")
}

// Int32s returns an array of int32.
func (f *File) Int32s(key string) ([]int32, error) {
	return arrayValue[int32](f, key, "an array of int32")
}

func arrayValue[T Scalar](f *File, key, want string) ([]T, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.V.([]T)
	if !ok {
		return nil, wrongType(key, v, want)
	}
	return s, nil
}
