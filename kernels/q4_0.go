package kernels

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
