package kernels

import "unsafe"

// WidenRow widens n values of dtype d stored in src (F32, F16 or Q8_0,
// little-endian; n a multiple of 32 for Q8_0) into dst, as Dequantize
// does, with AVX-512 where the CPU has it: the KV cache's stored rows.
func WidenRow(d DType, dst []float32, src []byte) {
	n := len(dst)
	if n == 0 {
		return
	}
	_ = src[RowBytes(d, n)-1]
	switch {
	case d == F32:
		copy(dst, unsafe.Slice((*float32)(unsafe.Pointer(&src[0])), n))
	case d == F16 && hasAVX512 && n%16 == 0:
		widenF16AVX512(&dst[0], (*uint16)(unsafe.Pointer(&src[0])), n)
	case d == Q8_0 && hasAVX512:
		widenQ8_0AVX512(&dst[0], &src[0], n/QK8_0)
	default:
		Dequantize(d, dst, src)
	}
}
