package kernels

// Q4_K: super-blocks of 256 weights, 144 bytes: float16 d and dmin, 12
// bytes packing eight 6-bit scales and eight 6-bit mins (one pair per
// sub-block of 32), then 128 bytes of 4-bit values: each run of 32 bytes
// holds two sub-blocks, the low nibbles first. Weight = d*scale*q -
// dmin*min.

// kScales unpacks the eight 6-bit scales and mins of a Q4_K or Q5_K block:
// the first four sit in the low 6 bits of bytes 0..3 (scales) and 4..7
// (mins); the last four take their low 4 bits from bytes 8..11 and their
// high 2 bits from the top of bytes 0..7.
func kScales(s []byte) (sc, m [8]uint8) {
	for j := range 4 {
		sc[j] = s[j] & 63
		m[j] = s[j+4] & 63
		sc[j+4] = s[j+8]&0xf | (s[j]>>6)<<4
		m[j+4] = s[j+8]>>4 | (s[j+4]>>6)<<4
	}
	return sc, m
}

// DequantizeQ4_K widens len(dst)/256 blocks of src into dst.
func DequantizeQ4_K(dst []float32, src []byte) {
	for b := range len(dst) / QKK {
		blk := src[b*Q4_KBytes : (b+1)*Q4_KBytes]
		d, dmin := f16At(blk), f16At(blk[2:])
		sc, m := kScales(blk[4 : 4+kScaleSize])
		qs := blk[4+kScaleSize:]
		y := dst[b*QKK : (b+1)*QKK]
		for j := range 8 {
			dl, ml := d*float32(sc[j]), dmin*float32(m[j])
			q := qs[j/2*32 : j/2*32+32]
			shift := uint(j%2) * 4
			for l, v := range q {
				y[j*32+l] = float32(dl*float32(v>>shift&0xf)) - ml
			}
		}
	}
}
