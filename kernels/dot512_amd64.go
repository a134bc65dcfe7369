//go:build amd64 && !purego

package kernels

// The AVX-512 dot products of dot512_amd64.s: one row, four rows, four rows
// by four tokens and four rows by one token.

//go:noescape
func dotBF16AVX512(w *uint16, x *float32, n int) float32

//go:noescape
func dot4BF16AVX512(w *uint16, x *float32, stride, n int, out *[4]float32)

//go:noescape
func dot4x4BF16AVX512(w *uint16, wstride int, x *float32, xstride, n int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x4F32AVX512(w *float32, wstride int, x *float32, xstride, n int, sums *[16]float32)

//go:noescape
func dot4x1BF16AVX512(w *uint16, wstride int, x *float32, n int, sums *[16]float32, pf uintptr, lines int)
