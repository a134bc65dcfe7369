package kernels

// HeadDimPadded is the row width BidirectionalAttention expects its values
// in: head dimensions up to 80 (SigLIP's 72) padded with zeros.
const HeadDimPadded = 80

// AttentionScratch is how many floats of scratch BidirectionalAttention
// needs for n keys.
func AttentionScratch(n int) int { return attnGroup*n + attnGroup*HeadDimPadded }

// attnGroup is how many queries share each pass over the keys and values:
// K and V of a head (SigLIP: 4096 x 72 each) do not fit in L1, so each
// chunk of them is used by 16 queries (four micro-kernel calls) while it is
// there, rather than streamed from L2 for every 4.
const attnGroup = 16

// attnChunk is how many value rows one pass of the PV kernels covers.
const attnChunk = 64

// BidirectionalAttention computes softmax(q k^T * scale) v without a mask for
// nq queries against n keys of one head: q rows at q[i*qstride:] (hd long),
// keys transposed as kt[d*n+j], values as vpad[j*80+d] (zero beyond hd), out
// rows at out[i*ostride:] (hd long). scratch must hold AttentionScratch(n)
// floats. With AVX-512 it runs 4 queries at a time on micro-kernels whose
// results are whole vectors (SigLIP's 72-wide heads are too short for dot
// products).
func BidirectionalAttention(out []float32, ostride int, q []float32, qstride int, kt, vpad []float32, nq, n, hd int, scale float32, scratch []float32) {
	sc := scratch[:attnGroup*n]
	ob := scratch[attnGroup*n : attnGroup*n+attnGroup*HeadDimPadded]
	i := 0
	if hasAVX512 && hd <= HeadDimPadded && n%32 == 0 && n > 0 {
		for i+4 <= nq {
			g := 4
			if i+attnGroup <= nq {
				g = attnGroup
			}
			c := 0
			for ; c+64 <= n; c += 64 {
				for s := 0; s < g; s += 4 {
					scores4x64AVX512(&q[(i+s)*qstride], qstride, &kt[c], n, hd, &sc[s*n+c], n)
				}
			}
			for ; c < n; c += 32 {
				for s := 0; s < g; s += 4 {
					scores4x32AVX512(&q[(i+s)*qstride], qstride, &kt[c], n, hd, &sc[s*n+c], n)
				}
			}
			var sums [attnGroup]float32
			for r := range g {
				sums[r] = expScaled(sc[r*n:(r+1)*n], scale) // normalized after the product
			}
			clear(ob[:g*HeadDimPadded])
			for j0 := 0; j0 < n; j0 += attnChunk {
				jn := min(attnChunk, n-j0)
				for s := 0; s < g; s += 4 {
					pv4x80AVX512(&sc[s*n+j0], n, &vpad[j0*HeadDimPadded], jn, &ob[s*HeadDimPadded])
				}
			}
			for r := range g {
				inv := 1 / sums[r]
				o := out[(i+r)*ostride : (i+r)*ostride+hd]
				for d := range o {
					o[d] = ob[r*HeadDimPadded+d] * inv
				}
			}
			i += g
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
