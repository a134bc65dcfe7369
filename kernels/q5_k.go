package kernels

// Q5_K: super-blocks of 256 weights, 176 bytes: as Q4_K (d, dmin, 12 bytes
// of scales and mins) then 32 bytes of fifth bits (bit j of byte l is the
// high bit of weight l of sub-block j) and 128 bytes of low nibbles laid out
// as Q4_K's. Weight = d*scale*q - dmin*min with q in 0..31.

// DequantizeQ5_K widens len(dst)/256 blocks of src into dst.
func DequantizeQ5_K(dst []float32, src []byte) {
	for b := range len(dst) / QKK {
		blk := src[b*Q5_KBytes : (b+1)*Q5_KBytes]
		d, dmin := f16At(blk), f16At(blk[2:])
		sc, m := kScales(blk[4 : 4+kScaleSize])
		qh := blk[4+kScaleSize : 4+kScaleSize+32]
		qs := blk[4+kScaleSize+32:]
		y := dst[b*QKK : (b+1)*QKK]
		for j := range 8 {
			dl, ml := d*float32(sc[j]), dmin*float32(m[j])
			q := qs[j/2*32 : j/2*32+32]
			shift := uint(j%2) * 4
			for l, v := range q {
				x := v>>shift&0xf | (qh[l]>>uint(j)&1)<<4
				y[j*32+l] = float32(dl*float32(x)) - ml
			}
		}
	}
}

// QuantizeQ5_K writes len(src)/256 super-blocks of src into dst as ggml's
// reference quantizer does (quantizeKBlock with 5-bit values, the search
// from 31-0.5 in 16 steps), the fifth bits packed apart.
func QuantizeQ5_K(dst []byte, src []float32) {
	var L [QKK]uint8
	for b := range len(src) / QKK {
		blk := dst[b*Q5_KBytes : (b+1)*Q5_KBytes]
		quantizeKBlock(blk, src[b*QKK:(b+1)*QKK], &L, 31, -0.5, 15)
		qh := blk[4+kScaleSize : 4+kScaleSize+32]
		qs := blk[4+kScaleSize+32:]
		clear(qh)
		m1, m2 := uint8(1), uint8(2)
		for n := 0; n < QKK; n += 64 {
			for j := range 32 {
				l1, l2 := L[n+j], L[n+j+32]
				if l1 > 15 {
					l1 -= 16
					qh[j] |= m1
				}
				if l2 > 15 {
					l2 -= 16
					qh[j] |= m2
				}
				qs[n/2+j] = l1 | l2<<4
			}
			m1, m2 = m1<<2, m2<<2
		}
	}
}
