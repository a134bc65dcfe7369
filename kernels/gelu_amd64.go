//go:build amd64 && !purego

package kernels

// The AVX-512 GELU of gelu_amd64.s.

//go:noescape
func geluTanhAVX512(x *float32, n int)
