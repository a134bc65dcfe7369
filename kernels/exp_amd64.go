//go:build amd64 && !purego

package kernels

// The AVX-512 maximum and sum of exponentials of exp_amd64.s (softmax).

//go:noescape
func maxAVX512(x *float32, n int, out *[16]float32)

//go:noescape
func expSumAVX512(x *float32, n int, sub, scale float32, out *[16]float32)
