//go:build amd64 && !purego

package jpeg

import "golang.org/x/sys/cpu"

// useIDCTAVX2 selects the AVX2 inverse DCT at run time.
var useIDCTAVX2 = cpu.X86.HasAVX2

// idctIslowAVX2 is idctIslowRef with eight columns (then eight rows) per
// instruction; it writes 8 bytes to each of 8 rows at dst.
//
//go:noescape
func idctIslowAVX2(dst *uint8, stride int, blk *[64]int32)
