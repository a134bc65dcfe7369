//go:build amd64 && !purego

package kernels

//go:noescape
func widenF16AVX512(dst *float32, src *uint16, n int)

//go:noescape
func widenQ8_0AVX512(dst *float32, src *byte, blocks int)
