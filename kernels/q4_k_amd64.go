//go:build amd64 && !purego

package kernels

// The AVX-512 Q4_K products of q4_k_amd64.s (written by qk_gen.go): four
// rows by four tokens and four rows by one token.

//go:generate go run qk_gen.go

//go:noescape
func dot4x4Q4_KAVX512(w *byte, wstride int, x *float32, xstride, blocks int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x1Q4_KAVX512(w *byte, wstride int, x *float32, blocks int, sums *[16]float32, pf uintptr, lines int)
