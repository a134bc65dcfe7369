//go:build !amd64 || purego

package jpeg

var useYCCAVX2 = false

func yccToRGBAVX2(dst, y, cb, cr *uint8, n int) { panic("unreachable") }

func h2v2RowAVX2(out, cur, near *uint8, n int) { panic("unreachable") }
