package kernels

import "golang.org/x/sys/cpu"

// hasAVX2 selects the AVX2+FMA kernels at run time; hasAVX512 the AVX-512
// ones (F for the arithmetic, BW for widening 16-bit lanes).
var (
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512 = hasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
)

//go:noescape
func dotBF16AVX512(w *uint16, x *float32, n int) float32

//go:noescape
func dot4BF16AVX512(w *uint16, x *float32, stride, n int, out *[4]float32)

//go:noescape
func dotBF16AVX2(w *uint16, x *float32, n int) float32

//go:noescape
func dotF32AVX2(a, b *float32, n int) float32

//go:noescape
func dot4BF16AVX2(w *uint16, x *float32, stride, n int, out *[4]float32)

//go:noescape
func axpyAVX2(a float32, x, y *float32, n int)

//go:noescape
func dot4x4BF16AVX512(w *uint16, wstride int, x *float32, xstride, n int, acc *[256]float32)

//go:noescape
func dot4x4F32AVX512(w *float32, wstride int, x *float32, xstride, n int, acc *[256]float32)

//go:noescape
func scores4x32AVX512(q *float32, qstride int, kt *float32, ktstride, hd int, out *float32, ostride int)

//go:noescape
func scores4x64AVX512(q *float32, qstride int, kt *float32, ktstride int, hd int, out *float32, ostride int)

//go:noescape
func pv4x80AVX512(p *float32, pstride int, v *float32, n int, out *float32)

//go:noescape
func maxAVX512(x *float32, n int, out *[16]float32)

//go:noescape
func expSumAVX512(x *float32, n int, sub, scale float32, out *[16]float32)

//go:noescape
func gemm12x16AVX512(xp *float32, w *float32, wstride, k int, acc *[192]float32)

//go:noescape
func widenBF16AVX512(dst *float32, src *uint16, n int)

//go:noescape
func transpose16AVX512(dst *float32, src *float32, stride, k int)

//go:noescape
func geluTanhAVX512(x *float32, n int)
