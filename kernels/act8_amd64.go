//go:build amd64 && !purego

package kernels

// The AVX-512 VNNI products of act8_amd64.s (written by act8_gen.go):
// four rows by four tokens and four rows by one, per weight type, iters
// being the row's pairs of 32-blocks (Q8_0) or super-blocks (K types).

//go:generate go run act8_gen.go act8avx2_gen.go

//go:noescape
func dot4x4Q8_0VNNI(w *byte, wstride int, a *byte, astride, iters int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x1Q8_0VNNI(w *byte, wstride int, a *byte, iters int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x4Q4_KVNNI(w *byte, wstride int, a *byte, astride, iters int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x1Q4_KVNNI(w *byte, wstride int, a *byte, iters int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x4Q6_KVNNI(w *byte, wstride int, a *byte, astride, iters int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x1Q6_KVNNI(w *byte, wstride int, a *byte, iters int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x4Q4_0VNNI(w *byte, wstride int, a *byte, astride, iters int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x1Q4_0VNNI(w *byte, wstride int, a *byte, iters int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x4Q5_KVNNI(w *byte, wstride int, a *byte, astride, iters int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dot4x1Q5_KVNNI(w *byte, wstride int, a *byte, iters int, sums *[16]float32, pf uintptr, lines int)

//go:noescape
func dotTile8Q8_0VNNI(w *byte, wstride int, a *byte, blocks int, out *[128]float32)

//go:noescape
func dotTile8Q4_KVNNI(w *byte, wstride int, a *byte, blocks int, out *[128]float32)

//go:noescape
func dotTile8Q6_KVNNI(w *byte, wstride int, a *byte, blocks int, out *[128]float32)

//go:noescape
func amax32AVX512(x *float32, blocks int, out *float32) (nan bool)

//go:noescape
func quant32AVX512(x *float32, blocks int, scales *float32, q *byte, sums4 *int32)

//go:noescape
func amax32AVX2(x *float32, blocks int, out *float32) (nan bool)

//go:noescape
func quant32AVX2(x *float32, blocks int, scales *float32, q *byte, sums4 *int32)

// The AVX2 products of act8avx2_amd64.s (same generator): four rows by one
// token, per weight type, out[r] the row's sum.

//go:noescape
func dot4x1Q8_0AVX2(w *byte, wstride int, a *byte, iters int, out *[4]float32, pf uintptr, lines int)

//go:noescape
func dot4x1Q4_0AVX2(w *byte, wstride int, a *byte, iters int, out *[4]float32, pf uintptr, lines int)

//go:noescape
func dot4x1Q4_KAVX2(w *byte, wstride int, a *byte, iters int, out *[4]float32, pf uintptr, lines int)

//go:noescape
func dot4x1Q5_KAVX2(w *byte, wstride int, a *byte, iters int, out *[4]float32, pf uintptr, lines int)

//go:noescape
func dot4x1Q6_KAVX2(w *byte, wstride int, a *byte, iters int, out *[4]float32, pf uintptr, lines int)
