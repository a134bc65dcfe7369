package mapped

import (
	"fmt"
	"unsafe"
)

// View reinterprets little-endian bytes of a mapped file as a slice of T
// without copying (nil for no bytes); it fails if the bytes are not aligned
// for T.
func View[T uint16 | float32](b []byte) ([]T, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var zero T
	if uintptr(unsafe.Pointer(&b[0]))%unsafe.Alignof(zero) != 0 {
		return nil, fmt.Errorf("data is not aligned for %T", zero)
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/int(unsafe.Sizeof(zero))), nil
}
