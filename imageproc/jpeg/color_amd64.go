//go:build amd64 && !purego

package jpeg

import "golang.org/x/sys/cpu"

// useYCCAVX2 selects the AVX2 colour conversion at run time.
var useYCCAVX2 = cpu.X86.HasAVX2

//go:noescape
func yccToRGBAVX2(dst, y, cb, cr *uint8, n int)

//go:noescape
func h2v2RowAVX2(out, cur, near *uint8, n int)
