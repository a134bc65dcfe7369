package kernels

import (
	"encoding/binary"
	"math"
)

// Q8_0: blocks of 32 weights, 34 bytes: the float16 scale d, then 32 int8
// values q; weight j is q[j] * d.

// DequantizeQ8_0 widens len(dst)/32 blocks of src into dst.
func DequantizeQ8_0(dst []float32, src []byte) {
	for b := range len(dst) / QK8_0 {
		blk := src[b*Q8_0Bytes : (b+1)*Q8_0Bytes]
		d := f16At(blk)
		y := dst[b*QK8_0 : (b+1)*QK8_0]
		for j, q := range blk[2:] {
			y[j] = float32(int8(q)) * d
		}
	}
}

// QuantizeQ8_0 writes len(src)/32 blocks of src into dst as ggml's
// reference quantizer does: d = max|x| / 127 (stored as float16), q =
// round(x / d) half away from zero, computed with 1/d in float32.
func QuantizeQ8_0(dst []byte, src []float32) {
	for b := range len(src) / QK8_0 {
		x := src[b*QK8_0 : (b+1)*QK8_0]
		var amax float32
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		blk := dst[b*Q8_0Bytes : (b+1)*Q8_0Bytes]
		binary.LittleEndian.PutUint16(blk, F32ToF16(d))
		for j, v := range x {
			blk[2+j] = byte(int8(math.Round(float64(float32(v * id)))))
		}
	}
}
