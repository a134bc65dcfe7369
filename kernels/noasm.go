//go:build !amd64 || purego

package kernels

// Without assembly (other architectures, or the purego build tag) only the
// plain Go kernels run: the flags are false, so these are never called.
var hasAVX2, hasAVX512, hasVNNI, hasAVX2Int = false, false, false, false

func dotBF16AVX2(w *uint16, x *float32, n int) float32                   { panic("no assembly") }
func dotF32AVX2(a, b *float32, n int) float32                            { panic("no assembly") }
func dot4BF16AVX2(w *uint16, x *float32, stride, n int, out *[4]float32) { panic("no assembly") }
func axpyAVX2(a float32, x, y *float32, n int)                           { panic("no assembly") }

func dotBF16AVX512(w *uint16, x *float32, n int) float32                   { panic("no assembly") }
func dot4BF16AVX512(w *uint16, x *float32, stride, n int, out *[4]float32) { panic("no assembly") }
func dot4x4BF16AVX512(w *uint16, wstride int, x *float32, xstride, n int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x4F32AVX512(w *float32, wstride int, x *float32, xstride, n int, sums *[16]float32) {
	panic("no assembly")
}
func dot4x1BF16AVX512(w *uint16, wstride int, x *float32, n int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x4Q8_0AVX512(w *byte, wstride int, x *float32, xstride, blocks int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q8_0AVX512(w *byte, wstride int, x *float32, blocks int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x4Q4_KAVX512(w *byte, wstride int, x *float32, xstride, blocks int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q4_KAVX512(w *byte, wstride int, x *float32, blocks int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x4Q6_KAVX512(w *byte, wstride int, x *float32, xstride, blocks int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q6_KAVX512(w *byte, wstride int, x *float32, blocks int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}

func scores4x32AVX512(q *float32, qstride int, kt *float32, ktstride, hd int, out *float32, ostride int) {
	panic("no assembly")
}
func scores4x64AVX512(q *float32, qstride int, kt *float32, ktstride int, hd int, out *float32, ostride int) {
	panic("no assembly")
}
func pv4x80AVX512(p *float32, pstride int, v *float32, n int, out *float32) { panic("no assembly") }

func maxAVX512(x *float32, n int, out *[16]float32)                        { panic("no assembly") }
func expSumAVX512(x *float32, n int, sub, scale float32, out *[16]float32) { panic("no assembly") }

func geluTanhAVX512(x *float32, n int) { panic("no assembly") }

func gemm12x16AVX512(xp *float32, w *float32, wstride, k int, acc *[192]float32) {
	panic("no assembly")
}
func widenBF16AVX512(dst *float32, src *uint16, n int)            { panic("no assembly") }
func transpose16AVX512(dst *float32, src *float32, stride, k int) { panic("no assembly") }

func dot4x4Q8_0VNNI(w *byte, wstride int, a *byte, astride, iters int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q8_0VNNI(w *byte, wstride int, a *byte, iters int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x4Q4_KVNNI(w *byte, wstride int, a *byte, astride, iters int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q4_KVNNI(w *byte, wstride int, a *byte, iters int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x4Q6_KVNNI(w *byte, wstride int, a *byte, astride, iters int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q6_KVNNI(w *byte, wstride int, a *byte, iters int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x4Q4_0VNNI(w *byte, wstride int, a *byte, astride, iters int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q4_0VNNI(w *byte, wstride int, a *byte, iters int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x4Q5_KVNNI(w *byte, wstride int, a *byte, astride, iters int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q5_KVNNI(w *byte, wstride int, a *byte, iters int, sums *[16]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dotTile8Q8_0VNNI(w *byte, wstride int, a *byte, blocks int, out *[128]float32) {
	panic("no assembly")
}
func dotTile8Q4_KVNNI(w *byte, wstride int, a *byte, blocks int, out *[128]float32) {
	panic("no assembly")
}
func amax32AVX512(x *float32, blocks int, out *float32) (nan bool) { panic("no assembly") }
func quant32AVX512(x *float32, blocks int, scales *float32, q *byte, sums4 *int32) {
	panic("no assembly")
}
func widenF16AVX512(dst *float32, src *uint16, n int)     { panic("no assembly") }
func widenQ8_0AVX512(dst *float32, src *byte, blocks int) { panic("no assembly") }

func dot4x1Q8_0AVX2(w *byte, wstride int, a *byte, iters int, out *[4]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q4_0AVX2(w *byte, wstride int, a *byte, iters int, out *[4]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q4_KAVX2(w *byte, wstride int, a *byte, iters int, out *[4]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q5_KAVX2(w *byte, wstride int, a *byte, iters int, out *[4]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func dot4x1Q6_KAVX2(w *byte, wstride int, a *byte, iters int, out *[4]float32, pf uintptr, lines int) {
	panic("no assembly")
}
func amax32AVX2(x *float32, blocks int, out *float32) (nan bool) { panic("no assembly") }
func quant32AVX2(x *float32, blocks int, scales *float32, q *byte, sums4 *int32) {
	panic("no assembly")
}
func dotTile8Q6_KVNNI(w *byte, wstride int, a *byte, blocks int, out *[128]float32) {
	panic("no assembly")
}
