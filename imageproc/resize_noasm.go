//go:build !amd64 || purego

package imageproc

var useResizeAVX2 = false

func resampleRowAVX2(dst, src *uint8, offs *int32, w *int16, n, groups int, half int32, shift uint64) {
	panic("unreachable")
}

func resampleColumnsAVX2(dst, src *uint8, stride, n int, k *int32, taps int, half int32, shift uint64) {
	panic("unreachable")
}
