//go:build amd64 && !purego

package imageproc

import "golang.org/x/sys/cpu"

// useResizeAVX2 selects the AVX2 resampling passes at run time.
var useResizeAVX2 = cpu.X86.HasAVX2

//go:noescape
func resampleRowAVX2(dst, src *uint8, offs *int32, w *int16, n, groups int, half int32, shift uint64)

//go:noescape
func resampleColumnsAVX2(dst, src *uint8, stride, n int, k *int32, taps int, half int32, shift uint64)
