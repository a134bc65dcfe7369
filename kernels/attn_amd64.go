//go:build amd64 && !purego

package kernels

// The AVX-512 attention micro-kernels of attn_amd64.s.

//go:noescape
func scores4x32AVX512(q *float32, qstride int, kt *float32, ktstride, hd int, out *float32, ostride int)

//go:noescape
func scores4x64AVX512(q *float32, qstride int, kt *float32, ktstride int, hd int, out *float32, ostride int)

//go:noescape
func pv4x80AVX512(p *float32, pstride int, v *float32, n int, out *float32)
