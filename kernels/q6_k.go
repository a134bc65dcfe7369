package kernels

import (
	"encoding/binary"
	"math"
)

// Q6_K: super-blocks of 256 weights, 210 bytes: 128 bytes of low nibbles,
// 64 bytes of high 2-bit pairs, 16 int8 scales (one per 16 weights), then
// the float16 d. Each half of 128 weights takes 64 nibble bytes and 32
// pair bytes: weight l (l < 32) of the half is the low nibble of ql[l] and
// bits 0-1 of qh[l]; weight l+32 the low nibble of ql[l+32] and bits 2-3;
// l+64 the high nibble of ql[l] and bits 4-5; l+96 the high nibble of
// ql[l+32] and bits 6-7. Weight = d*scale*(q - 32).

// DequantizeQ6_K widens len(dst)/256 blocks of src into dst.
func DequantizeQ6_K(dst []float32, src []byte) {
	for b := range len(dst) / QKK {
		blk := src[b*Q6_KBytes : (b+1)*Q6_KBytes]
		d := f16At(blk[208:])
		var ds [16]float32
		for j, s := range blk[192:208] {
			ds[j] = d * float32(int8(s))
		}
		y := dst[b*QKK : (b+1)*QKK]
		for h := range 2 {
			ql := blk[h*64 : h*64+64]
			qh := blk[128+h*32 : 128+h*32+32]
			o := h * 128
			for l := range 32 {
				q := [4]int{
					int(ql[l]&0xf | (qh[l]&3)<<4),
					int(ql[l+32]&0xf | (qh[l]>>2&3)<<4),
					int(ql[l]>>4 | (qh[l]>>4&3)<<4),
					int(ql[l+32]>>4 | (qh[l]>>6&3)<<4),
				}
				for k, v := range q {
					e := o + l + 32*k
					y[e] = ds[e/16] * float32(v-32)
				}
			}
		}
	}
}

// groupMaxEps is the magnitude below which ggml treats a group as zero.
const groupMaxEps = 1e-15

// nearestInt rounds to the nearest integer, ties to even, as ggml's
// nearest_int does for the magnitudes quantization meets.
func nearestInt(f float32) int { return int(math.RoundToEven(float64(f))) }

// makeQxQuants chooses the scale of n weights quantized to the integers
// -nmax..nmax-1 (stored in L offset by nmax), weighting each weight's error
// by its square, as ggml's make_qx_quants (rmse_type 1) does: the scale of
// the largest magnitude, then nineteen nearby ones, keeping the one of least
// weighted error.
func makeQxQuants(x []float32, L []int8, nmax int) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	try := func(iscale float32, store bool) (sumlx, suml2 float32) {
		for i, v := range x {
			l := max(-nmax, min(nmax-1, nearestInt(iscale*v)))
			if store {
				L[i] = int8(l + nmax)
			}
			w := v * v
			sumlx += float32(w*v) * float32(l)
			suml2 += float32(w*float32(l)) * float32(l)
		}
		return sumlx, suml2
	}
	sumlx, suml2 := try(-float32(nmax)/mx, true)
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := scale * sumlx
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale := -(float32(nmax) + 0.1*float32(is)) / mx
		sumlx, suml2 = try(iscale, false)
		if suml2 > 0 && sumlx*sumlx > best*suml2 {
			try(iscale, true)
			scale = sumlx / suml2
			best = scale * sumlx
		}
	}
	return scale
}

// QuantizeQ6_K writes len(src)/256 super-blocks of src into dst as ggml's
// reference quantizer does: each run of 16 weights gets its best scale
// (makeQxQuants), the sixteen scales are themselves quantized to int8
// against the largest (d = largest / -128), and the weights are rounded
// again against the scales as stored.
func QuantizeQ6_K(dst []byte, src []float32) {
	var L [QKK]int8
	var scales [16]float32
	for b := range len(src) / QKK {
		x := src[b*QKK : (b+1)*QKK]
		blk := dst[b*Q6_KBytes : (b+1)*Q6_KBytes]
		var maxScale, maxAbs float32
		for ib := range 16 {
			s := makeQxQuants(x[16*ib:16*ib+16], L[16*ib:16*ib+16], 32)
			scales[ib] = s
			if a := float32(math.Abs(float64(s))); a > maxAbs {
				maxAbs, maxScale = a, s
			}
		}
		clear(blk)
		if maxAbs < groupMaxEps {
			continue
		}
		iscale := -128 / maxScale
		binary.LittleEndian.PutUint16(blk[208:], F32ToF16(1/iscale))
		d := f16At(blk[208:])
		for ib := range 16 {
			blk[192+ib] = byte(int8(min(127, nearestInt(iscale*scales[ib]))))
		}
		for ib := range 16 {
			dl := d * float32(int8(blk[192+ib]))
			if dl == 0 {
				continue
			}
			for i := range 16 {
				l := max(-32, min(31, nearestInt(x[16*ib+i]/dl)))
				L[16*ib+i] = int8(l + 32)
			}
		}
		for h := range 2 {
			ql := blk[h*64 : h*64+64]
			qh := blk[128+h*32 : 128+h*32+32]
			q := L[h*128 : h*128+128]
			for l := range 32 {
				q1, q2, q3, q4 := uint8(q[l]), uint8(q[l+32]), uint8(q[l+64]), uint8(q[l+96])
				ql[l] = q1&0xf | (q3&0xf)<<4
				ql[l+32] = q2&0xf | (q4&0xf)<<4
				qh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
		}
	}
}
