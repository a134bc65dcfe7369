//go:build amd64 && !purego

package kernels

// The AVX-512 Q8_0 products of q8_0_amd64.s: four rows by four tokens and
// four rows by one token.

//go:noescape
func dot4x4Q8_0AVX512(w *byte, wstride int, x *float32, xstride, blocks int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x1Q8_0AVX512(w *byte, wstride int, x *float32, blocks int, sums *[16]float32, pf uintptr, lines int)
