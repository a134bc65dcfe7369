package kernels

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// 8-bit activations. Products of quantized weights go faster in integers:
// each token's activations are rounded to int8 with a float32 scale per
// block (32 values for Q8_0 and Q4_0, a 256-value super-block for the K
// types, as ggml's Q8_0 and Q8_K), then every block of weights is dotted
// with them in int32, exactly, and only the block's total is scaled back to
// float32. This is what llama.cpp does; it adds the activation rounding
// (at most half a step, 1/254 of a block's largest magnitude, per value) to
// the weights' own. Tokens are quantized one by one, so a token's products
// do not depend on the tokens beside it.
//
// Layout: per token, one slab of bytes, stride actStride(qt, cols):
//
//	Q8_0: per 64 values (two blocks), 192 bytes: the 64 int8 plus 128 (as
//	  unsigned bytes: the 4x4 kernels multiply them by the signed weights);
//	  the two blocks' scales, each 8 times (16 float32); 16 int32, lane l
//	  holding -128 * (the sum of int8 4l..4l+3) (what the 4x1 kernels,
//	  which make the weights unsigned instead, take away).
//	Q4_0: per 64 values, 192 bytes: the 64 int8; the scales as Q8_0's; 16
//	  int32 holding -128 * (the block's sum of int8) in lanes 0 and 8, zero
//	  elsewhere (what the kernels take away, divided by 16, for the
//	  weights' offset of 8).
//	K types, per 256 values, 320 bytes: the 256 int8 (for Q4_K and Q5_K in
//	  the order of their nibbles: sub-blocks 0,2,1,3,4,6,5,7); 16 int16 sums (Q6_K: of
//	  each 16 values; Q4_K and Q5_K: zero, then the eight sub-blocks' sums of
//	  32); the float32 scale; padding.
const actSuperBytes = 320 // Q8_K activations per 256 values

// actPairBytes is the bytes of 64 activations quantized for Q8_0 or Q4_0.
const actPairBytes = 192

// act8 holds n tokens' activations quantized for weights of type qt: a
// slab per token, and for Q8_0 products of many tokens (tileMinTokens)
// the same values transposed into tiles of tileTokens tokens (tiles).
type act8 struct {
	qt        DType
	n, cols   int
	stride    int
	buf       []byte
	tiles     []byte    // nil unless tiled
	x         []float32 // the input being quantized (for the job)
	quantJobT quantJob
	tileJobT  tileJob
}

type quantJob struct{ a *act8 }

func (j *quantJob) Do(_, lo, hi int) {
	for t := lo; t < hi; t++ {
		j.a.quantizeToken(t)
	}
}

type tileJob struct{ a *act8 }

func (j *tileJob) Do(_, lo, hi int) {
	for t := lo; t < hi; t++ {
		j.a.packTile(t)
	}
}

// act8s keeps released activation buffers for the next product.
var act8s freeList[act8]

// getAct8 takes a buffer from the free list, or a new one.
func getAct8() *act8 {
	return act8s.get(func() *act8 {
		a := new(act8)
		a.quantJobT.a, a.tileJobT.a = a, a
		return a
	})
}

// Tiles: Q8_0, Q4_K and Q6_K products of tileMinTokens tokens or more go through
// tile kernels (8 rows x a tile of tokens). Q8_0 tiles hold 15 tokens; each
// block of 32 activations takes 576 bytes: 8 groups of 64 bytes, lane t (4
// bytes) of group g holding token t's activations 4g..4g+3 plus 128 (lane
// 15, and lanes past the last token, 128s); then 16 float32, lane t the
// token's scale (0 past the last token). Q4_K tiles hold 16 tokens; each
// super-block takes 4416 bytes: per sub-block j and group g, 64 bytes at
// 512j+64g, lane t holding token t's (signed) activations 32j+4g..+3; at
// 4096 four vectors, lane t of vector k holding the token's sums of
// sub-blocks 2k and 2k+1 (int16); at 4352 the tokens' scales. Q6_K tiles
// (16 tokens) take 4672 bytes a super-block: group G of four activations
// (4G..4G+3) at 64G, lane t token t's; at 4096 eight vectors of the sums of
// 16 (lane t of vector k: sums 2k and 2k+1 as int16); at 4608 the scales.
// Lanes past the last token are zero.
const tileMinTokens = 32

// tileTokens is the tokens of a tile for weights of type qt.
func tileTokens(qt DType) int {
	if qt == Q8_0 {
		return 15
	}
	return 16
}

// tileBytes is a tile's bytes per row of cols.
func tileBytes(qt DType, cols int) int {
	if qt == Q8_0 {
		return cols / 32 * 576
	}
	return cols / QKK * tileSuperBytes(qt)
}

// tileSuperBytes is a K-type tile's bytes per super-block: the 64 groups
// of activations, the sums' vectors (4 for Q4_K, 8 for Q6_K), the scales.
func tileSuperBytes(qt DType) int { return 4096 + 64*tileSumVectors(qt) + 64 }

// tileSumVectors is how many vectors of int16 pairs of sums a K-type tile
// holds: Q4_K's eight sub-block sums, or Q6_K's sixteen sums of 16.
func tileSumVectors(qt DType) int {
	if qt == Q6_K {
		return 8
	}
	return 4
}

// tiledType reports whether qt has a tile kernel.
func tiledType(qt DType) bool { return hasVNNI && (qt == Q8_0 || qt == Q4_K || qt == Q6_K) }

// actStride is the bytes of one token's quantized activations.
func actStride(qt DType, cols int) int {
	if BlockSize(qt) == 32 {
		return cols / 64 * actPairBytes
	}
	return cols / QKK * actSuperBytes
}

// act8Layout reports whether weights of type qt and cols columns can take
// 8-bit activations: whole pairs of 32-blocks, or whole super-blocks.
func act8Layout(qt DType, cols int) bool {
	switch qt {
	case Q8_0, Q4_0:
		return cols%64 == 0
	case Q4_K, Q5_K, Q6_K:
		return cols%QKK == 0
	}
	return false
}

// quantizeActs returns n rows of x (cols each) quantized for weights of
// type qt, from a pool (putAct8 gives it back), quantizing tokens across
// the pool's threads when there are many.
func (pool Pool) quantizeActs(x []float32, n, cols int, qt DType) *act8 {
	a := getAct8()
	a.qt, a.n, a.cols = qt, n, cols
	a.stride = actStride(qt, cols)
	if need := n * a.stride; cap(a.buf) < need {
		a.buf = make([]byte, need)
	} else {
		a.buf = a.buf[:need]
	}
	a.x = x
	if n*cols >= 1<<16 {
		pool.Run(n, 1, &a.quantJobT)
	} else {
		a.quantJobT.Do(0, 0, n)
	}
	a.x = nil
	a.tiles = a.tiles[:0]
	if tiledType(qt) && n >= tileMinTokens {
		tiles := (n + tileTokens(qt) - 1) / tileTokens(qt)
		need := tiles * tileBytes(qt, cols)
		if cap(a.tiles) < need {
			a.tiles = make([]byte, need)
		}
		a.tiles = a.tiles[:need]
		pool.Run(tiles, 1, &a.tileJobT)
	}
	return a
}

// tiled reports whether the products take the tile kernel.
func (a *act8) tiled() bool { return len(a.tiles) > 0 }

// tile is tile i's bytes.
func (a *act8) tile(i int) []byte {
	size := tileBytes(a.qt, a.cols)
	return a.tiles[i*size : (i+1)*size]
}

// packTile transposes the slabs of tile i's tokens into the tile.
func (a *act8) packTile(i int) {
	if a.qt != Q8_0 {
		a.packTileK(i)
		return
	}
	dst := a.tile(i)
	for b := range a.cols / 32 {
		blk := dst[b*576 : (b+1)*576]
		for l := range 16 {
			t := i*15 + l
			if l == 15 || t >= a.n {
				for g := range 8 {
					copy(blk[64*g+4*l:64*g+4*l+4], "\x80\x80\x80\x80")
				}
				clear(blk[512+4*l : 512+4*l+4])
				continue
			}
			slab := a.token(t)[b/2*actPairBytes:]
			q := slab[32*(b%2) : 32*(b%2)+32] // plus 128 already
			for g := range 8 {
				copy(blk[64*g+4*l:64*g+4*l+4], q[4*g:4*g+4])
			}
			copy(blk[512+4*l:512+4*l+4], slab[64+32*(b%2):64+32*(b%2)+4])
		}
	}
}

// packTileK is packTile for Q4_K and Q6_K tiles: per super-block the
// tokens' groups of four activations (Q4_K's slab keeps sub-block j at
// q4kActOffset[j]; Q6_K's is in order), their sums as int16 pairs (the
// slab's lanes 8..15 for Q4_K, all sixteen for Q6_K), and their scales.
func (a *act8) packTileK(i int) {
	dst := a.tile(i)
	size, nsum := tileSuperBytes(a.qt), tileSumVectors(a.qt)
	sums := 256 // Q6_K: the sums of 16 from the slab's first lane
	if a.qt == Q4_K {
		sums = 256 + 2*8
	}
	for b := range a.cols / QKK {
		blk := dst[b*size : (b+1)*size]
		for l := range 16 {
			t := i*16 + l
			lane := func(off int) []byte { return blk[off+4*l : off+4*l+4] }
			if t >= a.n {
				for g := range 64 {
					clear(lane(64 * g))
				}
				for k := range nsum {
					clear(lane(4096 + 64*k))
				}
				clear(lane(4096 + 64*nsum))
				continue
			}
			slab := a.token(t)[b*actSuperBytes:]
			for g := range 64 {
				src := 4 * g
				if a.qt == Q4_K {
					src = q4kActOffset[g/8] + 4*(g%8)
				}
				copy(lane(64*g), slab[src:src+4])
			}
			for k := range nsum {
				copy(lane(4096+64*k), slab[sums+4*k:sums+4*k+4])
			}
			copy(lane(4096+64*nsum), slab[288:292])
		}
	}
}

// putAct8 gives a buffer back.
func putAct8(a *act8) { act8s.put(a) }

// token is token t's slab.
func (a *act8) token(t int) []byte { return a.buf[t*a.stride : (t+1)*a.stride] }

// roundAct rounds v to the nearest integer, ties to even, clamped to
// -127..127 (ggml's nearest_int and _mm256_round_ps).
func roundAct(v float32) int32 {
	return int32(max(-127, min(127, math.RoundToEven(float64(v)))))
}

// quantizeBlock rounds x to int8 as ggml's quantize_row_q8_0 does: the
// multiplier 127/max|x|, ties to even, the scale max|x|/127 kept as a
// float16 (0 for an all-zero block, NaN for one with an infinity or NaN, so
// the product is NaN as the float one would be). It returns the scale and
// the sum of the int8.
func quantizeBlock(dst []byte, x []float32) (d float32, sum int32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	if !(amax > 0) || math.IsInf(float64(amax), 0) {
		clear(dst)
		if amax == 0 {
			return 0, 0
		}
		return float32(math.NaN()), 0
	}
	id := 127 / amax
	for i, v := range x {
		q := roundAct(v * id)
		dst[i] = byte(int8(q))
		sum += q
	}
	return F16ToF32(F32ToF16(amax / 127)), sum
}

// q4kActOffset is where sub-block j of a Q4_K or Q5_K super-block's activations sits
// in its slab: the nibble runs pair sub-blocks 0 and 2, 1 and 3, 4 and 6, 5
// and 7.
var q4kActOffset = [8]int{0, 64, 32, 96, 128, 192, 160, 224}

// quantizeToken fills token t's slab from x: pairs of 32-blocks or
// super-blocks, with the AVX-512 or AVX2 kernels where the CPU has them
// (the same bytes: TestQuantizeActsFast).
func (a *act8) quantizeToken(t int) {
	s := a.token(t)
	x := a.x[t*a.cols : (t+1)*a.cols]
	fast := (hasVNNI || hasAVX2Int) && !forceRefQuant
	switch a.qt {
	case Q8_0, Q4_0:
		for p := 0; p < a.cols/64; p++ {
			slab, xs := s[p*actPairBytes:(p+1)*actPairBytes], x[64*p:64*p+64]
			if !fast || !a.quantizePairFast(slab, xs) {
				a.quantizePair(slab, xs)
			}
		}
	default:
		for b := 0; b < a.cols/QKK; b++ {
			slab, xb := s[b*actSuperBytes:(b+1)*actSuperBytes], x[b*QKK:(b+1)*QKK]
			if !fast || !a.quantizeSuperFast(slab, xb) {
				a.quantizeSuper(slab, xb)
			}
		}
	}
}

// forceRefQuant makes quantizeToken take the plain-Go path (for the tests).
var forceRefQuant bool

// amax32 sets out[b] to the largest magnitude of block b of x (32 values
// each) and reports whether there is a NaN (AVX-512 with VNNI, else AVX2).
func amax32(x *float32, blocks int, out *float32) (nan bool) {
	if hasVNNI {
		return amax32AVX512(x, blocks, out)
	}
	return amax32AVX2(x, blocks, out)
}

// quant32 rounds blocks of 32 values of x times their scales to int8 in q,
// with their sums of four in sums4 (AVX-512 with VNNI, else AVX2).
func quant32(x *float32, blocks int, scales *float32, q *byte, sums4 *int32) {
	if hasVNNI {
		quant32AVX512(x, blocks, scales, q, sums4)
		return
	}
	quant32AVX2(x, blocks, scales, q, sums4)
}

// quantizePair fills a Q8_0 or Q4_0 slab of 64 values (plain Go).
func (a *act8) quantizePair(slab []byte, xs []float32) {
	le := binary.LittleEndian
	for h := range 2 {
		q := slab[32*h : 32*h+32]
		d, sum := quantizeBlock(q, xs[32*h:32*h+32])
		for l := range 8 {
			le.PutUint32(slab[64+32*h+4*l:], math.Float32bits(d))
		}
		if a.qt == Q8_0 {
			for l := range 8 {
				var lane int32
				for i := 4 * l; i < 4*l+4; i++ {
					lane += int32(int8(q[i]))
				}
				le.PutUint32(slab[128+32*h+4*l:], uint32(-128*lane))
			}
			for i := range q {
				q[i] ^= 0x80
			}
		} else {
			clear(slab[128+32*h : 160+32*h])
			le.PutUint32(slab[128+32*h:], uint32(-128*sum))
		}
	}
}

// quantizePairFast is quantizePair through the SIMD kernels; it
// reports false, writing nothing, for blocks that are zero or hold a NaN
// or an infinity (quantizePair's special cases).
func (a *act8) quantizePairFast(slab []byte, xs []float32) bool {
	var amax, scales [2]float32
	var sums4 [16]int32
	if amax32(&xs[0], 2, &amax[0]) {
		return false
	}
	for h, m := range amax {
		if !(m > 0) || math.IsInf(float64(m), 0) {
			return false
		}
		scales[h] = 127 / m
	}
	quant32(&xs[0], 2, &scales[0], &slab[0], &sums4[0])
	le := binary.LittleEndian
	for h, m := range amax {
		d := math.Float32bits(F16ToF32(F32ToF16(m / 127)))
		for l := range 8 {
			le.PutUint32(slab[64+32*h+4*l:], d)
		}
	}
	if a.qt == Q8_0 {
		for l, v := range sums4 {
			le.PutUint32(slab[128+4*l:], uint32(-128*v))
		}
		for i := 0; i < 64; i += 8 {
			le.PutUint64(slab[i:], le.Uint64(slab[i:])^0x8080808080808080)
		}
		return true
	}
	clear(slab[128:192])
	for h := range 2 {
		var sum int32
		for _, v := range sums4[8*h : 8*h+8] {
			sum += v
		}
		le.PutUint32(slab[128+32*h:], uint32(-128*sum))
	}
	return true
}

// quantizeSuper fills a K-type slab of 256 values (plain Go).
func (a *act8) quantizeSuper(slab []byte, xb []float32) {
	var sums [QKK / 16]int32
	// As ggml's quantize_row_q8_K: the value of largest magnitude (the
	// first such) becomes -127.
	var amax, mx float32
	for _, v := range xb {
		if a := float32(math.Abs(float64(v))); a > amax || a != a {
			amax, mx = a, v
		}
	}
	iscale := -127 / mx
	d := 1 / iscale
	if !(amax > 0) || math.IsInf(float64(amax), 0) {
		iscale, d = 0, 0
		if amax != 0 {
			d = float32(math.NaN())
		}
	}
	for i, v := range xb {
		q := roundAct(v * iscale)
		if iscale == 0 {
			q = 0
		}
		pos := i
		if a.qt == Q4_K || a.qt == Q5_K {
			pos = q4kActOffset[i/32] + i%32
		}
		slab[pos] = byte(int8(q))
		sums[i/16] += q
	}
	a.superSums(slab, &sums, d)
}

// superSums writes a K-type slab's sums (from the sums of each 16) and
// scale.
func (a *act8) superSums(slab []byte, sums *[QKK / 16]int32, d float32) {
	le := binary.LittleEndian
	for j := range 16 {
		v := sums[j]
		if a.qt != Q6_K { // lanes 8..15: the sub-blocks' sums of 32
			v = 0
			if j >= 8 {
				v = sums[2*(j-8)] + sums[2*(j-8)+1]
			}
		}
		le.PutUint16(slab[256+2*j:], uint16(int16(v)))
	}
	le.PutUint32(slab[288:], math.Float32bits(d))
	clear(slab[292:])
}

// quantizeSuperFast is quantizeSuper through the SIMD kernels; it
// reports false, writing nothing, where quantizeSuper's special cases
// apply.
func (a *act8) quantizeSuperFast(slab []byte, xb []float32) bool {
	var amax, scales [8]float32
	var sums4 [64]int32
	var q [QKK]byte
	if amax32(&xb[0], 8, &amax[0]) {
		return false
	}
	m := amax[0]
	for _, v := range amax[1:] {
		m = max(m, v)
	}
	if !(m > 0) || math.IsInf(float64(m), 0) {
		return false
	}
	var mx float32
	for b, v := range amax {
		if v == m { // the first block holding it, then its first value
			for _, x := range xb[32*b : 32*b+32] {
				if float32(math.Abs(float64(x))) == m {
					mx = x
					break
				}
			}
			break
		}
	}
	iscale := -127 / mx
	for i := range scales {
		scales[i] = iscale
	}
	quant32(&xb[0], 8, &scales[0], &q[0], &sums4[0])
	if a.qt == Q4_K || a.qt == Q5_K {
		for j, off := range q4kActOffset {
			copy(slab[off:off+32], q[32*j:32*j+32])
		}
	} else {
		copy(slab[:QKK], q[:])
	}
	var sums [QKK / 16]int32
	for j := range sums {
		sums[j] = sums4[4*j] + sums4[4*j+1] + sums4[4*j+2] + sums4[4*j+3]
	}
	a.superSums(slab, &sums, 1/iscale)
	return true
}

// actQ returns the int8 activations of slab bytes b.
func actQ(b []byte) []int8 { return unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(b))), len(b)) }

// dotAct8Ref is a row of whole blocks of type qt dotted with one token's
// quantized activations s: per block the integer dot product, exact, then
// scaled by the weights' and the activations' scales and summed in float32.
// It defines what the SIMD kernels compute (they sum the same integers,
// scaling partial sums lane by lane, so they differ by float32 rounding).
func dotAct8Ref(qt DType, row, s []byte) float32 {
	le := binary.LittleEndian
	f32 := func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) }
	var sum float32
	switch qt {
	case Q8_0, Q4_0:
		bb := RowBytes(qt, 32)
		for b := 0; b < len(row)/bb; b++ {
			blk := row[b*bb : (b+1)*bb]
			slab := s[b/2*actPairBytes:]
			q := actQ(slab[32*(b%2) : 32*(b%2)+32])
			dx := f32(slab[64+32*(b%2):])
			var dot int32
			if qt == Q8_0 { // stored plus 128
				for l, v := range blk[2:34] {
					dot += int32(int8(v)) * int32(q[l]^-128)
				}
			} else {
				for l, v := range blk[2:18] {
					dot += (int32(v&0xf)-8)*int32(q[l]) + (int32(v>>4)-8)*int32(q[l+16])
				}
			}
			sum += float32(f16At(blk)*dx) * float32(dot)
		}
	case Q4_K, Q5_K:
		bb := RowBytes(qt, QKK)
		for b := 0; b < len(row)/bb; b++ {
			blk := row[b*bb : (b+1)*bb]
			slab := s[b*actSuperBytes : (b+1)*actSuperBytes]
			q := actQ(slab[:256])
			sc, m := kScales(blk[4 : 4+kScaleSize])
			var dot, mins int32
			for j := range 8 {
				var qs, qh []byte
				off := q4kActOffset[j]
				if qt == Q4_K {
					qs = blk[16+j/2*32 : 16+j/2*32+32]
				} else {
					qh, qs = blk[16:48], blk[48+j/2*32:48+j/2*32+32]
				}
				var dj int32
				for l, v := range qs {
					w := int32(v >> (4 * uint(j%2)) & 0xf)
					if qh != nil {
						w |= int32(qh[l]>>uint(j)&1) << 4
					}
					dj += w * int32(q[off+l])
				}
				dot += int32(sc[j]) * dj
				mins += int32(m[j]) * int32(int16(le.Uint16(slab[256+2*(8+j):])))
			}
			dx := f32(slab[288:])
			sum += float32(f16At(blk)*dx)*float32(dot) - float32(f16At(blk[2:])*dx)*float32(mins)
		}
	case Q6_K:
		for b := 0; b < len(row)/Q6_KBytes; b++ {
			blk := row[b*Q6_KBytes : (b+1)*Q6_KBytes]
			slab := s[b*actSuperBytes : (b+1)*actSuperBytes]
			q := actQ(slab[:256])
			var dot int32
			var part [16]int32
			for h := range 2 {
				ql, qh := blk[h*64:h*64+64], blk[128+h*32:128+h*32+32]
				for l := range 32 {
					w := [4]int32{
						int32(ql[l]&0xf | (qh[l]&3)<<4),
						int32(ql[l+32]&0xf | (qh[l]>>2&3)<<4),
						int32(ql[l]>>4 | (qh[l]>>4&3)<<4),
						int32(ql[l+32]>>4 | (qh[l]>>6&3)<<4),
					}
					for k, v := range w {
						e := h*128 + l + 32*k
						part[e/16] += v * int32(q[e])
					}
				}
			}
			for j := range 16 {
				bsum := int32(int16(le.Uint16(slab[256+2*j:])))
				dot += int32(int8(blk[192+j])) * (part[j] - 32*bsum)
			}
			sum += float32(f16At(blk[208:])*f32(slab[288:])) * float32(dot)
		}
	}
	return sum
}
