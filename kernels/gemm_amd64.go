//go:build amd64 && !purego

package kernels

// The AVX-512 GEMM pieces of gemm_amd64.s: the 12x16 micro-kernel, bf16
// widening and the 16x16 transpose.

//go:noescape
func gemm12x16AVX512(xp *float32, w *float32, wstride, k int, acc *[192]float32)

//go:noescape
func widenBF16AVX512(dst *float32, src *uint16, n int)

//go:noescape
func transpose16AVX512(dst *float32, src *float32, stride, k int)
