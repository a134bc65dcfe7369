//go:build !amd64 || purego

package jpeg

var useIDCTAVX2 = false

func idctIslowAVX2(dst *uint8, stride int, blk *[64]int32) { panic("unreachable") }
