package kernels

import "unsafe"

// useAct8 sends products of quantized weights through 8-bit activations
// (act8.go). It is on where integer kernels exist (AVX-512 VNNI, or AVX2);
// other CPUs keep float32 activations. Tests turn it on with both off to
// check the plain-Go path.
var useAct8 = hasVNNI || hasAVX2Int

// act8Kernel reports whether weights of type qt have SIMD kernels for 8-bit
// activations on this CPU.
func act8Kernel(qt DType) bool {
	return (hasVNNI || hasAVX2Int) && qt.Quantized()
}

// prefetchGroups is how many groups of four rows ahead blocked8's calls
// prefetch: one token's products are bound by memory, and two groups
// ahead keeps it busier than one (BenchmarkMatMulDecodeStep: Q8_0 24.7 ->
// 27.6 GB/s of weights on two threads).
const prefetchGroups = 2

// blocked8 computes rows lo..hi of the product of w with the quantized
// activations a, tiled as blocked is: blocks of tokens stay in cache while
// the weight rows stream past, 4 rows x 4 tokens share their loads, the
// rest go 4 rows x 1 token summing as the 4x4 tiles do (a token's products
// are bitwise the same batched or alone, however rows split), each call
// prefetching its share of four rows prefetchGroups groups ahead.
func blocked8(out []float32, a *act8, w *Mat, lo, hi int) {
	if a.tiled() {
		blockedTiles(out, a, w, lo, hi)
		return
	}
	var o [16]float32
	var o4 [4]float32
	qt, rows, n := w.DType, w.Rows, a.n
	rb := RowBytes(qt, w.Cols)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(w.Q)))
	for t0 := 0; t0 < n; t0 += tokenBlock {
		t1 := min(t0+tokenBlock, n)
		calls := (t1-t0)/4 + (t1-t0)%4
		lines := (4*rb/64 + calls) / calls
		r := lo
		for ; r+4 <= hi; r += 4 {
			t := t0
			pf := base + uintptr((r+4*prefetchGroups)*rb)
			for ; t+4 <= t1; t += 4 {
				dot4x4A8(qt, &o, w.Q[r*rb:], rb, a, t, pf, lines)
				pf += uintptr(lines * 64)
				for i, v := range o {
					out[(t+i%4)*rows+r+i/4] = v
				}
			}
			for ; t < t1; t++ {
				dot4x1A8(qt, &o4, w.Q[r*rb:], rb, a, t, pf, lines)
				pf += uintptr(lines * 64)
				copy(out[t*rows+r:t*rows+r+4], o4[:])
			}
		}
		// The last rows: the 4x1 kernel on the row four times over.
		for ; r < hi; r++ {
			for t := t0; t < t1; t++ {
				dot4x1A8(qt, &o4, w.Q[r*rb:], 0, a, t, 0, 0)
				out[t*rows+r] = o4[0]
			}
		}
	}
}

// blockedTiles computes rows lo..hi of a Q8_0, Q4_K or Q6_K product through the
// tile kernels: 8 rows by a tile of tokens at a time, the tiles'
// activations staying in cache while the rows stream past; the last rows
// (fewer than 8) go through them as eight copies of one row (stride 0), so
// a row's result does not depend on where the rows split, nor a token's on
// its tile.
func blockedTiles(out []float32, a *act8, w *Mat, lo, hi int) {
	var o [128]float32
	rb := RowBytes(w.DType, w.Cols)
	tt := tileTokens(w.DType)
	tiles := (a.n + tt - 1) / tt
	for r := lo; r < hi; {
		group, stride := 8, rb
		if hi-r < 8 {
			group, stride = 1, 0
		}
		_ = w.Q[r*rb+(group-1)*stride+rb-1]
		for i := range tiles {
			tile := a.tile(i)
			switch w.DType {
			case Q8_0:
				dotTile8Q8_0VNNI(&w.Q[r*rb], stride, &tile[0], w.Cols/32, &o)
			case Q4_K:
				dotTile8Q4_KVNNI(&w.Q[r*rb], stride, &tile[0], w.Cols/QKK, &o)
			case Q6_K:
				dotTile8Q6_KVNNI(&w.Q[r*rb], stride, &tile[0], w.Cols/QKK, &o)
			}
			scatterTile(out, &o, w.Rows, r, group, i*tt, min((i+1)*tt, a.n))
		}
		r += group
	}
}

// scatterTile writes a tile kernel's results (o[16k+j]: row r+k, token
// t0+j) for tokens t0..t1 into out (token-major, rows wide): eight rows
// a token through one bounds check (this was a tenth of a prefill's
// products when indexed element by element).
func scatterTile(out []float32, o *[128]float32, rows, r, group, t0, t1 int) {
	for t := t0; t < t1; t++ {
		j := (t - t0) & 15
		if group == 8 {
			d := (*[8]float32)(out[t*rows+r:])
			d[0], d[1], d[2], d[3] = o[j], o[16+j], o[32+j], o[48+j]
			d[4], d[5], d[6], d[7] = o[64+j], o[80+j], o[96+j], o[112+j]
			continue
		}
		for k := range group {
			out[t*rows+r+k] = o[16*k+j]
		}
	}
}

// dot4x4A8 computes out[r*4+t] = dot(row r, token t0+t) for four rows of
// type qt (w[r*wstride:]) and four tokens of a.
func dot4x4A8(qt DType, out *[16]float32, w []byte, wstride int, a *act8, t0 int, pf uintptr, lines int) {
	rb := RowBytes(qt, a.cols)
	_ = w[3*wstride+rb-1]
	_ = a.buf[(t0+4)*a.stride-1]
	if !act8Kernel(qt) {
		for i := range out {
			r, t := i/4, i%4
			out[i] = dotAct8Ref(qt, w[r*wstride:r*wstride+rb], a.token(t0+t))
		}
		return
	}
	if !hasVNNI { // AVX2: token by token, as alone
		var o4 [4]float32
		for t := range 4 {
			dot4x1A8(qt, &o4, w, wstride, a, t0+t, pf, lines)
			pf, lines = 0, 0 // the first call prefetches the group's share
			for r, v := range o4 {
				out[r*4+t] = v
			}
		}
		return
	}
	s := &a.buf[t0*a.stride]
	switch qt {
	case Q8_0:
		dot4x4Q8_0VNNI(&w[0], wstride, s, a.stride, a.cols/64, out, pf, lines)
	case Q4_0:
		dot4x4Q4_0VNNI(&w[0], wstride, s, a.stride, a.cols/64, out, pf, lines)
	case Q4_K:
		dot4x4Q4_KVNNI(&w[0], wstride, s, a.stride, a.cols/QKK, out, pf, lines)
	case Q5_K:
		dot4x4Q5_KVNNI(&w[0], wstride, s, a.stride, a.cols/QKK, out, pf, lines)
	case Q6_K:
		dot4x4Q6_KVNNI(&w[0], wstride, s, a.stride, a.cols/QKK, out, pf, lines)
	}
}

// dot4x1A8 is dot4x4A8 for token t, summing as it does.
func dot4x1A8(qt DType, out *[4]float32, w []byte, wstride int, a *act8, t int, pf uintptr, lines int) {
	rb := RowBytes(qt, a.cols)
	_ = w[3*wstride+rb-1]
	s := a.token(t)
	if !act8Kernel(qt) {
		for r := range out {
			out[r] = dotAct8Ref(qt, w[r*wstride:r*wstride+rb], s)
		}
		return
	}
	if !hasVNNI {
		dot4x1AVX2(qt, out, w, wstride, s, a.cols, pf, lines)
		return
	}
	var sums [16]float32
	switch qt {
	case Q8_0:
		dot4x1Q8_0VNNI(&w[0], wstride, &s[0], a.cols/64, &sums, pf, lines)
	case Q4_0:
		dot4x1Q4_0VNNI(&w[0], wstride, &s[0], a.cols/64, &sums, pf, lines)
	case Q4_K:
		dot4x1Q4_KVNNI(&w[0], wstride, &s[0], a.cols/QKK, &sums, pf, lines)
	case Q5_K:
		dot4x1Q5_KVNNI(&w[0], wstride, &s[0], a.cols/QKK, &sums, pf, lines)
	case Q6_K:
		dot4x1Q6_KVNNI(&w[0], wstride, &s[0], a.cols/QKK, &sums, pf, lines)
	}
	for r := range out {
		out[r] = sums[r*4]
	}
}

// dot4x1AVX2 is dot4x1A8 through the AVX2 kernels.
func dot4x1AVX2(qt DType, out *[4]float32, w []byte, wstride int, s []byte, cols int, pf uintptr, lines int) {
	switch qt {
	case Q8_0:
		dot4x1Q8_0AVX2(&w[0], wstride, &s[0], cols/64, out, pf, lines)
	case Q4_0:
		dot4x1Q4_0AVX2(&w[0], wstride, &s[0], cols/64, out, pf, lines)
	case Q4_K:
		dot4x1Q4_KAVX2(&w[0], wstride, &s[0], cols/QKK, out, pf, lines)
	case Q5_K:
		dot4x1Q5_KAVX2(&w[0], wstride, &s[0], cols/QKK, out, pf, lines)
	case Q6_K:
		dot4x1Q6_KAVX2(&w[0], wstride, &s[0], cols/QKK, out, pf, lines)
	}
}

// SetInt8Activations turns the 8-bit activations of quantized products on
// or off (on by default where the CPU has AVX-512 VNNI or AVX2; off, quantized
// weights meet float32 activations, slower and without the activations'
// rounding) and returns the previous setting. It is process-wide: set it
// before any product runs.
func SetInt8Activations(on bool) (was bool) {
	was, useAct8 = useAct8, on
	return was
}
