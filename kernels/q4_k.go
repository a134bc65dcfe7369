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

// dotQ4_KRef is a Q4_K row (whole super-blocks) dotted with x as
// dotQuantRows computes it.
func dotQ4_KRef(row []byte, x []float32) float32 {
	var buf [QKK]float32
	var s float32
	for b := 0; b < len(row)/Q4_KBytes; b++ {
		DequantizeQ4_K(buf[:], row[b*Q4_KBytes:(b+1)*Q4_KBytes])
		s += Dot(buf[:], x[b*QKK:(b+1)*QKK])
	}
	return s
}

// dot4x4Q4_K is dot4x4Q8_0 for Q4_K rows of blocks super-blocks.
func dot4x4Q4_K(out *[16]float32, w []byte, wstride int, x []float32, xstride, blocks int, pf uintptr, lines int) {
	_ = w[3*wstride+blocks*Q4_KBytes-1]
	_ = x[3*xstride+blocks*QKK-1]
	if !hasAVX512 {
		for i := range out {
			r, t := i/4, i%4
			out[i] = dotQ4_KRef(w[r*wstride:r*wstride+blocks*Q4_KBytes], x[t*xstride:])
		}
		return
	}
	dot4x4Q4_KAVX512(&w[0], wstride, &x[0], xstride, blocks, out, pf, lines)
}

// dot4x1Q4_K is dot4x4Q4_K for one x row, summing as it does for its
// first token.
func dot4x1Q4_K(out *[4]float32, w []byte, wstride int, x []float32, blocks int, pf uintptr, lines int) {
	_ = w[3*wstride+blocks*Q4_KBytes-1]
	_ = x[blocks*QKK-1]
	if !hasAVX512 {
		for r := range out {
			out[r] = dotQ4_KRef(w[r*wstride:r*wstride+blocks*Q4_KBytes], x)
		}
		return
	}
	var sums [16]float32
	dot4x1Q4_KAVX512(&w[0], wstride, &x[0], blocks, &sums, pf, lines)
	for r := range out {
		out[r] = sums[r*4]
	}
}
