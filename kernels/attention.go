package kernels

// HeadDimPadded is the row width BidirectionalAttention expects its values
// in: head dimensions up to 80 (SigLIP's 72) padded with zeros.
const HeadDimPadded = 80

// BidirectionalAttention computes softmax(q k^T * scale) v without a mask for
// nq queries against n keys of one head: q rows at q[i*qstride:] (hd long),
// keys transposed as kt[d*n+j], values as vpad[j*80+d] (zero beyond hd), out
// rows at out[i*ostride:] (hd long). scratch must hold 4*n + 4*80 floats.
// With AVX-512 it runs 4 queries at a time on micro-kernels whose results are
// whole vectors (SigLIP's 72-wide heads are too short for dot products).
func BidirectionalAttention(out []float32, ostride int, q []float32, qstride int, kt, vpad []float32, nq, n, hd int, scale float32, scratch []float32) {
	sc := scratch[:4*n]
	ob := scratch[4*n : 4*n+4*HeadDimPadded]
	i := 0
	if hasAVX512 && hd <= HeadDimPadded && n%32 == 0 && n > 0 {
		for ; i+4 <= nq; i += 4 {
			for c := 0; c < n; c += 32 {
				scores4x32AVX512(&q[i*qstride], qstride, &kt[c], n, hd, &sc[c], n)
			}
			var sums [4]float32
			for r := range 4 {
				sums[r] = expScaled(sc[r*n:(r+1)*n], scale) // normalized after the product
			}
			pv4x80AVX512(&sc[0], n, &vpad[0], n, &ob[0])
			for r := range 4 {
				inv := 1 / sums[r]
				o := out[(i+r)*ostride : (i+r)*ostride+hd]
				for d := range o {
					o[d] = ob[r*HeadDimPadded+d] * inv
				}
			}
		}
	}
	// The rest (and every query without AVX-512): long axpy and dot loops.
	row := sc[:n]
	for ; i < nq; i++ {
		clear(row)
		for d := range hd {
			Axpy(q[i*qstride+d], kt[d*n:(d+1)*n], row)
		}
		SoftmaxScaled(row, scale)
		o := out[i*ostride : i*ostride+hd]
		clear(o)
		for j, w := range row {
			Axpy(w, vpad[j*HeadDimPadded:j*HeadDimPadded+hd], o)
		}
	}
}
