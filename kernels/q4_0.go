package kernels

import (
	"encoding/binary"
	"math"
)

// Q4_0: blocks of 32 weights, 18 bytes: the float16 scale d, then 16 bytes
// whose low nibbles are weights 0..15 and high nibbles weights 16..31, each
// stored plus 8; weight j is (nibble - 8) * d.

// DequantizeQ4_0 widens len(dst)/32 blocks of src into dst.
func DequantizeQ4_0(dst []float32, src []byte) {
	for b := range len(dst) / QK4_0 {
		blk := src[b*Q4_0Bytes : (b+1)*Q4_0Bytes]
		d := f16At(blk)
		y := dst[b*QK4_0 : (b+1)*QK4_0]
		for j, q := range blk[2:] {
			y[j] = float32(int(q&0xf)-8) * d
			y[j+16] = float32(int(q>>4)-8) * d
		}
	}
}

// QuantizeQ4_0 writes len(src)/32 blocks of src into dst as ggml's
// reference quantizer does: d = (the value of largest magnitude) / -8, and
// each q = min(15, trunc(x/d + 8.5)), in float32.
func QuantizeQ4_0(dst []byte, src []float32) {
	for b := range len(src) / QK4_0 {
		x := src[b*QK4_0 : (b+1)*QK4_0]
		var amax, mx float32
		for _, v := range x {
			if a := float32(math.Abs(float64(v))); amax < a {
				amax, mx = a, v
			}
		}
		d := mx / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		blk := dst[b*Q4_0Bytes : (b+1)*Q4_0Bytes]
		binary.LittleEndian.PutUint16(blk, F32ToF16(d))
		for j := range 16 {
			x0 := float32(x[j]*id) + 8.5
			x1 := float32(x[16+j]*id) + 8.5
			blk[2+j] = byte(min(15, int8(x0))) | byte(min(15, int8(x1)))<<4
		}
	}
}
