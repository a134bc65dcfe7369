package kernels

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// randBlocks returns rows x cols weights of block type d as random bytes
// (every integer the format can hold, the largest scales and mins), the
// float16 scales kept finite and below 2^7.
func randBlocks(rng *rand.Rand, d DType, rows, cols int) []byte {
	return randBlocksMasked(rng, d, rows, cols, 0x5b)
}

// randBlocksMasked is randBlocks with the scales' high bytes ANDed with
// mask.
func randBlocksMasked(rng *rand.Rand, d DType, rows, cols int, mask byte) []byte {
	q := make([]byte, rows*RowBytes(d, cols))
	for i := range q {
		q[i] = byte(rng.Uint32())
	}
	bs := RowBytes(d, BlockSize(d))
	for b := 0; b < len(q); b += bs {
		for _, off := range scaleOffsets(d, bs) {
			q[b+off+1] &= mask
		}
	}
	return q
}

// quantizedNormal returns rows x cols normal weights quantized to d as the
// quantizers do, and their dequantization.
func quantizedNormal(rng *rand.Rand, d DType, rows, cols int) ([]byte, []float32) {
	f := randF32(rng, rows*cols)
	for i := range f {
		f[i] *= 0.05
	}
	q := make([]byte, rows*RowBytes(d, cols))
	rb := RowBytes(d, cols)
	for r := range rows {
		src, dst := f[r*cols:(r+1)*cols], q[r*rb:(r+1)*rb]
		switch d {
		case Q8_0:
			QuantizeQ8_0(dst, src)
		case Q4_0:
			QuantizeQ4_0(dst, src)
		case Q4_K:
			QuantizeQ4_K(dst, src)
		case Q5_K:
			QuantizeQ5_K(dst, src)
		case Q6_K:
			QuantizeQ6_K(dst, src)
		}
	}
	Dequantize(d, f, q)
	return q, f
}

// TestAct8Reference: the plain-Go 8-bit path (every block type) is the
// float32 product of the dequantized weights with activations off by at
// most half a quantization step each: |got - exact| <= sum |w| * step/2
// (plus float32 rounding), and for Gaussian activations the error is a
// fraction of that bound. Rows of zeros and infinities give 0 and NaN.
func TestAct8Reference(t *testing.T) {
	savedA, savedV, saved2 := useAct8, hasVNNI, hasAVX2Int
	defer func() { useAct8, hasVNNI, hasAVX2Int = savedA, savedV, saved2 }()
	useAct8, hasVNNI, hasAVX2Int = true, false, false
	rng := rand.New(rand.NewPCG(21, 22))
	for _, d := range []DType{Q8_0, Q4_0, Q4_K, Q5_K, Q6_K} {
		rows, cols, n := 9, 2*QKK, 5
		q, wf := quantizedNormal(rng, d, rows, cols)
		w := &Mat{Rows: rows, Cols: cols, DType: d, Q: q}
		x := randF32(rng, n*cols)
		got := make([]float32, n*rows)
		NewPool(2).MatMul(got, x, n, w)
		var worst float64
		for tk := range n {
			xt := x[tk*cols : (tk+1)*cols]
			group := BlockSize(d)
			for r := range rows {
				var exact, bound, mag float64
				for g := 0; g < cols; g += group {
					var amax float64
					for _, v := range xt[g : g+group] {
						amax = math.Max(amax, math.Abs(float64(v)))
					}
					for i := g; i < g+group; i++ {
						wv := float64(wf[r*cols+i])
						exact += wv * float64(xt[i])
						bound += math.Abs(wv) * amax / 254
						mag += math.Abs(wv * float64(xt[i]))
					}
				}
				e := math.Abs(float64(got[tk*rows+r]) - exact)
				if e > bound*1.001+1e-5*mag {
					t.Fatalf("%s token %d row %d: %v, exact %v: error %g over the bound %g", d, tk, r, got[tk*rows+r], exact, e, bound)
				}
				worst = math.Max(worst, e/bound)
			}
		}
		if worst > 0.5 {
			t.Errorf("%s: worst error %.2f of the bound; rounding errors should mostly cancel", d, worst)
		}
		t.Logf("%s: worst error %.3f of the half-step bound", d, worst)
	}
	// A token of zeros gives zeros; an infinite activation gives NaN (as
	// the float product's inf*0 terms would).
	w := &Mat{Rows: 4, Cols: QKK, DType: Q4_K, Q: randBlocks(rng, Q4_K, 4, QKK)}
	x := make([]float32, 2*QKK)
	x[QKK+3] = float32(math.Inf(1))
	out := make([]float32, 8)
	NewPool(1).MatMul(out, x, 2, w)
	for r := range 4 {
		if out[r] != 0 || !math.IsNaN(float64(out[4+r])) {
			t.Fatalf("row %d: zeros give %v, an infinity %v", r, out[r], out[4+r])
		}
	}
}

// TestAct8Kernels: the SIMD kernels of every level the CPU has (AVX-512
// VNNI, AVX2) compute what dotAct8Ref does (the same integers; float32
// rounding apart) on random bytes, which reach every weight, scale and
// minimum the formats hold, for every tile shape; a token's results are
// bitwise the same wherever it sits in the batch and however threads split
// the rows, and the same alone (bitwise, except for the tiles of
// tileMinTokens tokens or more, which sum differently: there within
// rounding).
func TestAct8Kernels(t *testing.T) {
	forAct8Levels(t, "the plain-Go path is TestAct8Reference's", testAct8Kernels)
}

// forAct8Levels runs test once per level of 8-bit kernels the CPU has
// (VNNI: the AVX-512 quantizer and kernels; AVX2), as that level would
// run, and skips when there is none (why: what covers the plain-Go path).
func forAct8Levels(t *testing.T, why string, test func(*testing.T)) {
	savedV, saved2, savedA := hasVNNI, hasAVX2Int, useAct8
	defer func() { hasVNNI, hasAVX2Int, useAct8 = savedV, saved2, savedA }()
	levels := 0
	for _, level := range []struct {
		name string
		on   bool
		vnni bool
	}{{"VNNI", savedV, true}, {"AVX2", saved2, false}} {
		if !level.on {
			t.Logf("%s: not on this CPU", level.name)
			continue
		}
		levels++
		hasVNNI, hasAVX2Int, useAct8 = level.vnni, true, true
		t.Run(level.name, test)
	}
	if levels == 0 {
		t.Skip("no AVX2 nor AVX-512 VNNI: " + why)
	}
}

func testAct8Kernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, d := range []DType{Q8_0, Q4_0, Q4_K, Q5_K, Q6_K} {
		for _, c := range []struct{ rows, cols int }{{4, QKK}, {13, 2 * QKK}, {37, 5 * QKK}} {
			w := &Mat{Rows: c.rows, Cols: c.cols, DType: d, Q: randBlocks(rng, d, c.rows, c.cols)}
			wf := make([]float32, c.rows*c.cols)
			Dequantize(d, wf, w.Q)
			rb := RowBytes(d, c.cols)
			for _, n := range []int{1, 3, 4, 5, 8, 13, 70} {
				name := fmt.Sprintf("%s %dx%d n=%d", d, c.rows, c.cols, n)
				x := randF32(rng, n*c.cols)
				for i := range x {
					if rng.IntN(50) == 0 {
						x[i] *= 30 // outliers, as activations have
					}
				}
				got := make([]float32, n*c.rows)
				NewPool(2).MatMul(got, x, n, w)
				a := NewPool(1).quantizeActs(x, n, c.cols, d)
				for tk := range n {
					for r := range c.rows {
						want := dotAct8Ref(d, w.Q[r*rb:(r+1)*rb], a.token(tk))
						var mag float64
						for i := range c.cols {
							mag += math.Abs(float64(wf[r*c.cols+i]) * float64(x[tk*c.cols+i]))
						}
						if g := got[tk*c.rows+r]; math.Abs(float64(g-want)) > 2e-5*mag+1e-30 {
							t.Fatalf("%s token %d row %d: %v, reference %v (magnitude %g)", name, tk, r, g, want, mag)
						}
					}
				}
				tiled := a.tiled()
				putAct8(a)
				other := make([]float32, n*c.rows)
				NewPool(3).MatMul(other, x, n, w)
				// Rotated by one token: each token in another place (of
				// another tile).
				rot := append(x[c.cols:n*c.cols:n*c.cols], x[:c.cols]...)
				rotated := make([]float32, n*c.rows)
				NewPool(2).MatMul(rotated, rot, n, w)
				alone := make([]float32, c.rows)
				for tk := range n {
					NewPool(1).MatMul(alone, x[tk*c.cols:(tk+1)*c.cols], 1, w)
					for r, v := range alone {
						g, o, ro := got[tk*c.rows+r], other[tk*c.rows+r], rotated[(tk+n-1)%n*c.rows+r]
						if g != o || g != ro {
							t.Fatalf("%s token %d row %d: %v, with 3 threads %v, in another place %v", name, tk, r, g, o, ro)
						}
						// Tiles sum each block before scaling it: alone, the
						// same within float32 rounding; otherwise bitwise.
						var mag float64
						for i := range c.cols {
							mag += math.Abs(float64(wf[r*c.cols+i]) * float64(x[tk*c.cols+i]))
						}
						if !tiled && g != v || tiled && math.Abs(float64(g-v)) > 2e-5*mag {
							t.Fatalf("%s token %d row %d: batched %v, alone %v", name, tk, r, g, v)
						}
					}
				}
			}
		}
	}
}

// TestAct8AllocatesNothing: a decode product of quantized weights through
// 8-bit activations allocates nothing (the activations' buffers are
// pooled).
func TestAct8AllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	savedA := useAct8
	defer func() { useAct8 = savedA }()
	useAct8 = true
	for _, d := range []DType{Q8_0, Q4_0, Q4_K, Q5_K, Q6_K} {
		w := &Mat{Rows: 1024, Cols: 512, DType: d, Q: randBlocks(rng, d, 1024, 512)}
		x, out := randF32(rng, 512), make([]float32, 1024)
		pool := NewPool(2)
		pool.MatMul(out, x, 1, w)
		if n := testing.AllocsPerRun(50, func() { pool.MatMul(out, x, 1, w) }); n != 0 {
			t.Errorf("%s: MatMul allocates %v times per call", d, n)
		}
	}
}

// TestQuantizeActsFast: the AVX-512 and AVX2 quantizers write the plain-Go
// one's bytes for every slab type: random values with outliers, ties
// between +max and -max (the first wins), halves (ties to even), blocks of
// zeros, and blocks with a NaN or an infinity.
func TestQuantizeActsFast(t *testing.T) {
	forAct8Levels(t, "only the plain-Go quantizer runs", testQuantizeActsFast)
}

func testQuantizeActsFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	cols, n := 4*QKK, 9
	x := randF32(rng, n*cols)
	for i := range x {
		switch rng.IntN(40) {
		case 0:
			x[i] *= 50
		case 1:
			x[i] = float32(rng.IntN(9)-4) * 0.5 // exact halves after scaling by some blocks
		}
	}
	clear(x[0:QKK])                     // token 0: a zero super-block
	x[cols+5] = float32(math.NaN())     // token 1: a NaN
	x[2*cols+70] = float32(math.Inf(1)) // token 2: an infinity
	x[3*cols+10], x[3*cols+200] = -7, 7 // token 3: -max first
	x[4*cols+10], x[4*cols+200] = 7, -7 // token 4: +max first
	for _, d := range []DType{Q8_0, Q4_0, Q4_K, Q5_K, Q6_K} {
		fast := NewPool(1).quantizeActs(x, n, cols, d)
		forceRefQuant = true
		ref := NewPool(1).quantizeActs(x, n, cols, d)
		forceRefQuant = false
		for tk := range n {
			if a, b := fast.token(tk), ref.token(tk); !bytes.Equal(a, b) {
				i := 0
				for a[i] == b[i] {
					i++
				}
				t.Fatalf("%s token %d: byte %d is %#x, the plain-Go quantizer's %#x", d, tk, i, a[i], b[i])
			}
		}
		putAct8(fast)
		putAct8(ref)
	}
}
