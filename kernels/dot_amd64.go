//go:build amd64 && !purego

package kernels

// The AVX2+FMA dot products and axpy of dot_amd64.s.

//go:noescape
func dotBF16AVX2(w *uint16, x *float32, n int) float32

//go:noescape
func dotF32AVX2(a, b *float32, n int) float32

//go:noescape
func dot4BF16AVX2(w *uint16, x *float32, stride, n int, out *[4]float32)

//go:noescape
func axpyAVX2(a float32, x, y *float32, n int)
