package jpeg

// libjpeg's "islow" inverse DCT (jidctint.c, the default JDCT_ISLOW that PIL
// decodes with): the Loeffler-Ligtenberg-Moschytz algorithm with 12
// multiplies per 1-D transform, constants with 13 fractional bits, columns
// first with 2 extra bits of precision kept between the passes, then level
// shift and clamp. Valid files keep every intermediate within 32 bits
// (libjpeg's own bound), so computing in int32 gives libjpeg's samples; for
// corrupt coefficients the int32 wrap-around is the same in the plain Go
// code and the SIMD code, so a file decodes to the same pixels on every CPU.

const (
	idctConstBits = 13
	idctPass1Bits = 2

	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_541196100 = 4433
	fix0_765366865 = 6270
	fix0_899976223 = 7373
	fix1_175875602 = 9633
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_562915447 = 20995
	fix3_072711026 = 25172
)

// idct1D is one 1-D transform, rounded and shifted right by shift bits: in
// int32 for 8-bit samples, in int64 (libjpeg's JLONG) for 12-bit ones.
func idct1D[T int32 | int64](i0, i1, i2, i3, i4, i5, i6, i7 T, shift uint) (o [8]T) {
	// Even part: the rotator is sqrt(2)*c(-6).
	z1 := (i2 + i6) * fix0_541196100
	tmp2 := z1 - i6*fix1_847759065
	tmp3 := z1 + i2*fix0_765366865
	round := T(1) << (shift - 1)
	tmp0 := (i0+i4)<<idctConstBits + round
	tmp1 := (i0-i4)<<idctConstBits + round
	tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
	tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

	// Odd part.
	t0, t1, t2, t3 := i7, i5, i3, i1
	z1 = t0 + t3
	z2 := t1 + t2
	z3 := t0 + t2
	z4 := t1 + t3
	z5 := (z3 + z4) * fix1_175875602
	t0 *= fix0_298631336
	t1 *= fix2_053119869
	t2 *= fix3_072711026
	t3 *= fix1_501321110
	z1 *= -fix0_899976223
	z2 *= -fix2_562915447
	z3 = z3*-fix1_961570560 + z5
	z4 = z4*-fix0_390180644 + z5
	t0 += z1 + z3
	t1 += z2 + z4
	t2 += z2 + z3
	t3 += z1 + z4

	o[0] = (tmp10 + t3) >> shift
	o[7] = (tmp10 - t3) >> shift
	o[1] = (tmp11 + t2) >> shift
	o[6] = (tmp11 - t2) >> shift
	o[2] = (tmp12 + t1) >> shift
	o[5] = (tmp12 - t1) >> shift
	o[3] = (tmp13 + t0) >> shift
	o[4] = (tmp13 - t0) >> shift
	return o
}

// idctIslow transforms one block of dequantized coefficients (natural
// order) into 8x8 samples at dst with the given stride. last is the zigzag
// index of the last nonzero coefficient: 0 means only DC, which libjpeg's
// shortcuts turn into one value.
func idctIslow(dst []uint8, stride int, blk *[64]int32, last int) {
	_ = dst[7*stride+7]
	if last == 0 {
		v := sample((blk[0]<<idctPass1Bits + 1<<(idctPass1Bits+2)) >> (idctPass1Bits + 3))
		for y := range 8 {
			row := dst[y*stride : y*stride+8 : y*stride+8]
			for x := range row {
				row[x] = v
			}
		}
		return
	}
	if useIDCTAVX2 {
		idctIslowAVX2(&dst[0], stride, blk)
		return
	}
	idctIslowRef(dst, stride, blk)
}

// idctIslowRef is the plain Go transform that the SIMD version must equal.
func idctIslowRef(dst []uint8, stride int, blk *[64]int32) {
	idct2D[int32](blk, idctPass1Bits, func(y int, o [8]int32) {
		row := dst[y*stride : y*stride+8 : y*stride+8]
		for x := range row {
			row[x] = sample(o[x])
		}
	})
}

// idct2D runs the two passes of the islow transform over one block: the
// columns, keeping pass1 extra bits, then the rows, handing each row's 8
// outputs (before the level shift) to put.
func idct2D[T int32 | int64](blk *[64]int32, pass1 uint, put func(y int, o [8]T)) {
	var ws [64]T
	for c := range 8 {
		in := blk[c : c+57 : c+57]
		o := idct1D(T(in[0]), T(in[8]), T(in[16]), T(in[24]), T(in[32]), T(in[40]), T(in[48]), T(in[56]), idctConstBits-pass1)
		for y := range 8 {
			ws[y*8+c] = o[y]
		}
	}
	for y := range 8 {
		w := ws[y*8 : y*8+8 : y*8+8]
		put(y, idct1D(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], idctConstBits+pass1+3))
	}
}

// sample level-shifts an IDCT output by 128 and clamps it to 0..255, as
// libjpeg's SIMD code does (its C range-limit table agrees on every value a
// valid file produces).
func sample(v int32) uint8 {
	v += 128
	if uint32(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return uint8(v)
}

// idctIslow12 is the transform for 12-bit samples (libjpeg built with
// BITS_IN_JSAMPLE 12: one extra bit between the passes instead of two,
// 64-bit products, samples centred on 2048 and clamped to 0..4095).
func idctIslow12(dst []uint16, stride int, blk *[64]int32) {
	_ = dst[7*stride+7]
	idct2D[int64](blk, 1, func(y int, o [8]int64) {
		row := dst[y*stride : y*stride+8 : y*stride+8]
		for x := range row {
			row[x] = uint16(min(max(o[x]+2048, 0), 4095))
		}
	})
}
