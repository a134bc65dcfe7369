package kernels

import "sync"

// A prefill or an image multiplies many tokens by the same weights: compute
// bound, not memory bound. The dot-product kernels (dot4x4) spend half their
// instructions loading and widening operands; gemm instead keeps 16 tokens
// in the lanes of a vector and 12 weight rows in 12 accumulators, so that
// every instruction of its inner loop but one is a fused multiply-add whose
// weight comes broadcast straight from memory (AVX-512). For that the token
// rows are transposed into tiles of 16 (16x16 blocks in registers, once per
// block of tokens, reused by every weight row) and the bf16 weight rows
// widened to float32 (once per block of tokens). Each output is still one
// float32 sum over k in order.

const (
	gemmRows   = 12  // weight rows per micro-kernel call
	gemmTokens = 16  // tokens per micro-kernel call (the vector lanes)
	gemmBlock  = 512 // tokens per block: their sums stay in a buffer
	gemmDepth  = 384 // columns (k) per pass: the operands stay in L1 and L2
)

// gemmMinTokens is the smallest product of float32 or f16 weights that
// takes the gemm path (f16 has no other fast path: an mmproj file's vision
// tower, 4096 patches at once): below it the 4x4 micro-kernels (blocked) are as fast or faster.
// bf16 weights always take blocked, whose tiles prefetch the next weight
// rows: on one core of an AVX-512 EPYC it beats gemm at every size measured
// (BenchmarkMatMulBatch, tokens/s blocked/gemm on 10240x2560: 1948/1035 at
// 16, 2009/1750 at 128, 2005/1867 at 256, 2007/1833 at 512, 1984/1934 at
// 1024; on 2560x10240 2015/2010 at 256, 1986/1976 at 1024).
const gemmMinTokens = 256

// gemmScratch is one worker's buffers, reused across calls.
type gemmScratch struct {
	xp  []float32 // token tiles of one pass, [tile][k][16]
	w   []float32 // gemmRows widened weight rows of one pass, [row][k]
	acc []float32 // sums of the block, [row tile][token tile][row][16]
}

var gemmScratches = sync.Pool{New: func() any { return new(gemmScratch) }}

// grow returns b with length n, reallocated only when too small.
func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// gemmRowsRange computes rows lo..hi of out = x W^T for n tokens, for bf16
// (raw) or f16 (raw, f16 set) or float32 (f32) weights of cols columns.
// Blocks of gemmBlock tokens are done in passes of gemmDepth columns, each
// adding to the block's sums; a pass widens its weight rows once for all
// the block's tokens.
func gemmRowsRange(out, x []float32, n, rows, cols, lo, hi int, raw []uint16, f16 bool, f32 []float32) {
	s := gemmScratches.Get().(*gemmScratch)
	defer gemmScratches.Put(s)
	rowTiles := (hi - lo + gemmRows - 1) / gemmRows
	for t0 := 0; t0 < n; t0 += gemmBlock {
		t1 := min(t0+gemmBlock, n)
		tiles := (t1 - t0 + gemmTokens - 1) / gemmTokens
		tileSums := gemmRows * gemmTokens
		s.acc = grow(s.acc, rowTiles*tiles*tileSums)
		clear(s.acc)
		for k0 := 0; k0 < cols; k0 += gemmDepth {
			kn := min(gemmDepth, cols-k0)
			s.xp = grow(s.xp, tiles*gemmTokens*kn)
			s.w = grow(s.w, gemmRows*kn)
			for j := range tiles {
				tile := s.xp[j*gemmTokens*kn : (j+1)*gemmTokens*kn]
				tok0 := t0 + j*gemmTokens
				if tok0+gemmTokens <= t1 && kn >= 16 {
					// A whole tile: 16x16 blocks in registers, the rest below.
					k16 := kn &^ 15
					transpose16AVX512(&tile[0], &x[tok0*cols+k0], cols, k16)
					for t := range gemmTokens {
						for k, v := range x[(tok0+t)*cols+k0+k16 : (tok0+t)*cols+k0+kn] {
							tile[(k16+k)*gemmTokens+t] = v
						}
					}
					continue
				}
				for t := range gemmTokens {
					tok := t0 + j*gemmTokens + t
					if tok >= t1 {
						for k := range kn {
							tile[k*gemmTokens+t] = 0
						}
						continue
					}
					for k, v := range x[tok*cols+k0 : tok*cols+k0+kn] {
						tile[k*gemmTokens+t] = v
					}
				}
			}
			for rt := range rowTiles {
				r := lo + rt*gemmRows
				nr := min(gemmRows, hi-r)
				for i := range gemmRows {
					dst := s.w[i*kn : (i+1)*kn]
					switch {
					case i >= nr:
						clear(dst)
					case raw != nil && f16:
						for k, h := range raw[(r+i)*cols+k0 : (r+i)*cols+k0+kn] {
							dst[k] = F16ToF32(h)
						}
					case raw != nil:
						widenBF16(dst, raw[(r+i)*cols+k0:(r+i)*cols+k0+kn])
					default:
						copy(dst, f32[(r+i)*cols+k0:(r+i)*cols+k0+kn])
					}
				}
				for j := range tiles {
					acc := (*[gemmRows * gemmTokens]float32)(s.acc[(rt*tiles+j)*tileSums:])
					gemm12x16AVX512(&s.xp[j*gemmTokens*kn], &s.w[0], kn, kn, acc)
				}
			}
		}
		for rt := range rowTiles {
			r := lo + rt*gemmRows
			nr := min(gemmRows, hi-r)
			for j := range tiles {
				acc := s.acc[(rt*tiles+j)*tileSums:]
				tok0 := t0 + j*gemmTokens
				nt := min(gemmTokens, t1-tok0)
				for t := range nt {
					o := out[(tok0+t)*rows+r : (tok0+t)*rows+r+nr]
					for i := range o {
						o[i] = acc[i*gemmTokens+t]
					}
				}
			}
		}
	}
}

// widenBF16 converts bf16 bits to float32 (exact).
func widenBF16(dst []float32, src []uint16) {
	n := len(src) &^ 15
	if n > 0 {
		widenBF16AVX512(&dst[0], &src[0], n)
	}
	for i := n; i < len(src); i++ {
		dst[i] = BF16ToF32(src[i])
	}
}
