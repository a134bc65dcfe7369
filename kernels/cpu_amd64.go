//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// hasAVX2 selects the AVX2+FMA kernels at run time; hasAVX512 the AVX-512
// ones (F for the arithmetic, BW for widening 16-bit lanes, VL for their
// narrower forms on registers 16-31); hasVNNI the integer dot products of
// 8-bit activations; hasAVX2Int the AVX2 ones (with F16C for the weights'
// float16 scales), which serve where VNNI is missing.
var (
	hasAVX2    = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512  = hasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL
	hasVNNI    = hasAVX512 && cpu.X86.HasAVX512VNNI
	hasAVX2Int = hasAVX2 && cpu.X86.HasF16C
)
