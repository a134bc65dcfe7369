package kernels

import (
	"encoding/binary"
	"math"
)

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

// makeQkx2Quants chooses the scale and minimum of n weights quantized to
// 0..nmax as ggml's make_qkx2_quants does: the full range first, then
// nstep+1 scales from (nmax+rmin)/range in steps of rdelta/range, each with
// the least-squares scale and minimum for its rounding (the minimum kept at
// or below zero), keeping the one of least weighted squared error. It
// returns the scale and -minimum; L receives the quantized values.
func makeQkx2Quants(x, weights []float32, L, aux []uint8, nmax int, rmin, rdelta float32, nstep int) (scale, negMin float32) {
	mn, mx := x[0], x[0]
	sumW := weights[0]
	sumX := sumW * x[0]
	for i := 1; i < len(x); i++ {
		mn, mx = min(mn, x[i]), max(mx, x[i])
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	mn = min(mn, 0)
	if mx == mn {
		clear(L)
		return 0, -mn
	}
	iscale := float32(nmax) / (mx - mn)
	scale = 1 / iscale
	var bestErr float32
	for i, v := range x {
		l := max(0, min(nmax, nearestInt(iscale*float32(v-mn))))
		L[i] = uint8(l)
		diff := float32(scale*float32(l)) + mn - v
		bestErr += float32(weights[i] * float32(diff*diff))
	}
	for is := 0; is <= nstep; is++ {
		iscale := (rmin + float32(rdelta*float32(is)) + float32(nmax)) / (mx - mn)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := max(0, min(nmax, nearestInt(iscale*float32(v-mn))))
			aux[i] = uint8(l)
			w := weights[i]
			sumL += float32(w * float32(l))
			sumL2 += float32(float32(w*float32(l)) * float32(l))
			sumXL += float32(float32(w*float32(l)) * v)
		}
		d := float32(sumW*sumL2) - float32(sumL*sumL)
		if d <= 0 {
			continue
		}
		thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / d
		thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / d
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		var cur float32
		for i, v := range x {
			diff := float32(thisScale*float32(aux[i])) + thisMin - v
			cur += float32(weights[i] * float32(diff*diff))
		}
		if cur < bestErr {
			copy(L, aux[:len(x)])
			bestErr, scale, mn = cur, thisScale, thisMin
		}
	}
	return scale, -mn
}

// QuantizeQ4_K writes len(src)/256 super-blocks of src into dst as ggml's
// reference quantizer does (quantizeKBlock with 4-bit values), the values
// packed as nibbles.
func QuantizeQ4_K(dst []byte, src []float32) {
	var L [QKK]uint8
	for b := range len(src) / QKK {
		blk := dst[b*Q4_KBytes : (b+1)*Q4_KBytes]
		quantizeKBlock(blk, src[b*QKK:(b+1)*QKK], &L, 15, -1, 20)
		qs := blk[4+kScaleSize:]
		for j := 0; j < QKK; j += 64 {
			for l := range 32 {
				qs[j/2+l] = L[j+l] | L[j+l+32]<<4
			}
		}
	}
}

// quantizeKBlock does the shared part of the Q4_K and Q5_K quantizers for
// one super-block: each sub-block of 32 gets its scale and minimum
// (makeQkx2Quants over values 0..nmax, weighting each weight by the
// sub-block's RMS plus its magnitude, searching from nmax+rmin in nstep+1
// steps of 0.1), both stored as 6 bits against the largest of each
// (packKScales), and the weights are rounded again into L against the
// scales as stored.
func quantizeKBlock(blk []byte, x []float32, L *[QKK]uint8, nmax int, rmin float32, nstep int) {
	var aux [32]uint8
	var weights [32]float32
	var scales, mins [8]float32
	var maxScale, maxMin float32
	for j := range 8 {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += v * v
		}
		av := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			weights[l] = av + float32(math.Abs(float64(v)))
		}
		scales[j], mins[j] = makeQkx2Quants(xs, weights[:], L[32*j:32*j+32], aux[:], nmax, rmin, 0.1, nstep)
		maxScale, maxMin = max(maxScale, scales[j]), max(maxMin, mins[j])
	}
	packKScales(blk, scales, mins, maxScale, maxMin)
	d, dmin := f16At(blk), f16At(blk[2:])
	sc, m := kScales(blk[4 : 4+kScaleSize])
	for j := range 8 {
		dl := d * float32(sc[j])
		if dl == 0 {
			continue
		}
		dm := dmin * float32(m[j])
		for i := range 32 {
			L[32*j+i] = uint8(max(0, min(nmax, nearestInt((x[32*j+i]+dm)/dl))))
		}
	}
}

// packKScales stores a Q4_K or Q5_K block's d and dmin (the largest scale
// and minimum over 63) and its eight scales and minimums as 6-bit values
// against them, packed as kScales unpacks them.
func packKScales(blk []byte, scales, mins [8]float32, maxScale, maxMin float32) {
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	s := blk[4 : 4+kScaleSize]
	clear(s)
	for j := range 8 {
		ls := uint8(min(63, nearestInt(invScale*scales[j])))
		lm := uint8(min(63, nearestInt(invMin*mins[j])))
		if j < 4 {
			s[j], s[j+4] = ls, lm
		} else {
			s[j+4] = ls&0xf | (lm&0xf)<<4
			s[j-4] |= (ls >> 4) << 6
			s[j] |= (lm >> 4) << 6
		}
	}
	binary.LittleEndian.PutUint16(blk, F32ToF16(maxScale/63))
	binary.LittleEndian.PutUint16(blk[2:], F32ToF16(maxMin/63))
}
