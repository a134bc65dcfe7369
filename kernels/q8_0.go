package kernels

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
