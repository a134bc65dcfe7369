package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func randBF16(rng *rand.Rand, n int) []uint16 {
	w := make([]uint16, n)
	for i := range w {
		w[i] = uint16(math.Float32bits(float32(rng.NormFloat64()*0.05)) >> 16)
	}
	return w
}

func randF32(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func close32(a, b float32, scale float64) bool {
	return math.Abs(float64(a-b)) <= 1e-5*scale+1e-6
}

// TestDotAgainstReference compares the dispatched dot products (AVX2 where
// the CPU has it) with the plain-Go references, for lengths around the
// vector widths.
func TestDotAgainstReference(t *testing.T) {
	t.Logf("AVX2+FMA: %v, AVX-512: %v", hasAVX2, hasAVX512)
	saved2, saved512 := hasAVX2, hasAVX512
	defer func() { hasAVX2, hasAVX512 = saved2, saved512 }()
	// Every level this CPU has, then plain Go.
	for _, level := range [][2]bool{{saved2, saved512}, {saved2, false}, {false, false}} {
		hasAVX2, hasAVX512 = level[0], level[1]
		testDots(t)
	}
}

func testDots(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 100, 2560, 10240} {
		w := randBF16(rng, n)
		x := randF32(rng, 4*n)
		var scale float64
		for i := range n {
			scale += math.Abs(float64(BF16ToF32(w[i]) * x[i]))
		}
		if got, want := DotBF16(w, x[:n]), DotBF16Ref(w, x[:n]); !close32(got, want, scale) {
			t.Errorf("DotBF16 n=%d: %v, reference %v", n, got, want)
		}
		a := randF32(rng, n)
		if got, want := Dot(a, x[:n]), DotRef(a, x[:n]); !close32(got, want, float64(n)) {
			t.Errorf("Dot n=%d: %v, reference %v", n, got, want)
		}
		y1, y2 := randF32(rng, n), make([]float32, n)
		copy(y2, y1)
		Axpy(0.37, a, y1)
		AxpyRef(0.37, a, y2)
		for i := range y1 {
			if !close32(y1[i], y2[i], 4) {
				t.Fatalf("Axpy n=%d [%d]: %v, reference %v", n, i, y1[i], y2[i])
			}
		}
		w4 := randBF16(rng, 4*n)
		var o16 [16]float32
		dot4x4BF16(&o16, w4, n, x, n, n, uintptr(unsafe.Pointer(&w4[0])), 4) // prefetching its own rows
		for i, v := range o16 {
			r, tk := i/4, i%4
			if want := DotBF16Ref(w4[r*n:(r+1)*n], x[tk*n:(tk+1)*n]); !close32(v, want, float64(n)) {
				t.Errorf("dot4x4BF16 n=%d [%d]: %v, reference %v", n, i, v, want)
			}
		}
		var o4 [4]float32
		dot4x1BF16(&o4, w4, n, x, n, uintptr(unsafe.Pointer(&w4[0])), n/8)
		for r, v := range o4 {
			if want := DotBF16Ref(w4[r*n:(r+1)*n], x[:n]); !close32(v, want, float64(n)) {
				t.Errorf("dot4x1BF16 n=%d row %d: %v, reference %v", n, r, v, want)
			}
		}
		wf := randF32(rng, 4*n)
		dot4x4F32(&o16, wf, n, x, n, n)
		for i, v := range o16 {
			r, tk := i/4, i%4
			if want := DotRef(wf[r*n:(r+1)*n], x[tk*n:(tk+1)*n]); !close32(v, want, 3*float64(n)) {
				t.Errorf("dot4x4F32 n=%d [%d]: %v, reference %v", n, i, v, want)
			}
		}
		var o [4]float32
		dot4BF16(&o, w, x, n)
		for k := range 4 {
			if want := DotBF16Ref(w, x[k*n:(k+1)*n]); !close32(o[k], want, float64(n)) {
				t.Errorf("dot4BF16 n=%d row %d: %v, reference %v", n, k, o[k], want)
			}
		}
	}
}

func TestMatMulAgainstReference(t *testing.T) {
	saved := hasAVX512
	defer func() { hasAVX512 = saved }()
	for _, simd := range []bool{saved, false} { // AVX-512 (and gemm for f32), then dot4x4 only
		hasAVX512 = simd
		testMatMul(t)
	}
}

func testMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, threads := range []int{1, 2, 3} {
		pool := NewPool(threads)
		for _, c := range []struct{ rows, cols, n int }{{1, 8, 1}, {5, 3, 2}, {64, 40, 1}, {300, 64, 7}, {97, 130, 21}, {1024, 256, 1}, {512, 96, 33}, {12, 16, 16}, {13, 17, 17}, {25, 1, 40}, {7, 15, 129}, {40, 300, 300}} {
			w := &Mat{Rows: c.rows, Cols: c.cols, DType: BF16, Raw: randBF16(rng, c.rows*c.cols)}
			x := randF32(rng, c.n*c.cols)
			got := make([]float32, c.n*c.rows)
			want := make([]float32, c.n*c.rows)
			pool.MatMul(got, x, c.n, w)
			MatMulRef(want, x, c.n, w)
			for i := range got {
				if !close32(got[i], want[i], float64(c.cols)) {
					t.Fatalf("threads %d %+v: out[%d] = %v, reference %v", threads, c, i, got[i], want[i])
				}
			}
			if hasAVX512 { // bf16 products never take gemm through MatMul
				clear(got)
				gemmRowsRange(got, x, c.n, c.rows, c.cols, 0, c.rows, w.Raw, false, nil)
				for i := range got {
					if !close32(got[i], want[i], float64(c.cols)) {
						t.Fatalf("gemm %+v: out[%d] = %v, reference %v", c, i, got[i], want[i])
					}
				}
			}
			wh := &Mat{Rows: c.rows, Cols: c.cols, DType: F16, Raw: make([]uint16, c.rows*c.cols)}
			for i, v := range randF32(rng, c.rows*c.cols) {
				wh.Raw[i] = F32ToF16(v * 0.05)
			}
			pool.MatMul(got, x, c.n, wh)
			MatMulRef(want, x, c.n, wh)
			for i := range got {
				if !close32(got[i], want[i], float64(c.cols)) {
					t.Fatalf("f16 threads %d %+v: out[%d] = %v, reference %v", threads, c, i, got[i], want[i])
				}
			}
			wf := &Mat{Rows: c.rows, Cols: c.cols, DType: F32, F32: randF32(rng, c.rows*c.cols)}
			pool.MatMul(got, x, c.n, wf)
			MatMulRef(want, x, c.n, wf)
			for i := range got {
				if !close32(got[i], want[i], float64(c.cols)*3) {
					t.Fatalf("f32 threads %d %+v: out[%d] = %v, reference %v", threads, c, i, got[i], want[i])
				}
			}
		}
	}
}

// TestMatMulTokenAloneOrBatched: with AVX-512 (and rows of 16 or more) a
// token's products are bitwise the same whether it is multiplied alone
// (dot4x1) or with others, in any place of a 4x4 tile or among a block's
// last tokens, and however threads split the rows; otherwise within
// rounding.
func TestMatMulTokenAloneOrBatched(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, c := range []struct{ rows, cols int }{{37, 200}, {64, 2560}, {9, 15}} {
		w := &Mat{Rows: c.rows, Cols: c.cols, DType: BF16, Raw: randBF16(rng, c.rows*c.cols)}
		for _, n := range []int{2, 3, 4, 5, 8, 13, 70} {
			x := randF32(rng, n*c.cols)
			batched := make([]float32, n*c.rows)
			NewPool(2).MatMul(batched, x, n, w)
			// Threads split the rows elsewhere: the same bits.
			other := make([]float32, n*c.rows)
			NewPool(3).MatMul(other, x, n, w)
			for i, v := range other {
				if hasAVX512 && c.cols >= 16 && v != batched[i] {
					t.Fatalf("%+v n=%d: [%d] %v with 3 threads, %v with 2", c, n, i, v, batched[i])
				}
			}
			alone := make([]float32, c.rows)
			for tk := range n {
				NewPool(2).MatMul(alone, x[tk*c.cols:(tk+1)*c.cols], 1, w)
				for r, v := range alone {
					got := batched[tk*c.rows+r]
					if hasAVX512 && c.cols >= 16 && got != v || !close32(got, v, float64(c.cols)) {
						t.Fatalf("%+v n=%d token %d row %d: batched %v, alone %v", c, n, tk, r, got, v)
					}
				}
			}
		}
	}
}

func TestMatMulAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	w := &Mat{Rows: 4096, Cols: 256, DType: BF16, Raw: randBF16(rng, 4096*256)}
	x := randF32(rng, 256)
	out := make([]float32, 4096)
	pool := NewPool(2)
	pool.MatMul(out, x, 1, w)
	if n := testing.AllocsPerRun(50, func() { pool.MatMul(out, x, 1, w) }); n != 0 {
		t.Errorf("MatMul allocates %v times per call", n)
	}
}

func TestF16(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x0001, float32(math.Ldexp(1, -24))}, {0x7bff, 65504}, {0x0000, 0}, {0x3555, 0.33325195}} {
		if got := F16ToF32(c.h); got != c.want {
			t.Errorf("F16ToF32(%#x) = %v, want %v", c.h, got, c.want)
		}
	}
}

func BenchmarkDotBF16(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	w, x := randBF16(rng, 2560), randF32(rng, 2560)
	b.SetBytes(2560 * 2)
	for b.Loop() {
		DotBF16(w, x)
	}
}

func TestExp32(t *testing.T) {
	worst := 0.0
	for x := float32(-103); x <= 88; x += 0.0137 {
		got, want := float64(Exp32(x)), math.Exp(float64(x))
		if want < 1e-37 {
			continue // subnormal results: absolute error is what matters there
		}
		worst = max(worst, math.Abs(got-want)/want)
	}
	if worst > 3e-7 {
		t.Errorf("Exp32 relative error %.3g", worst)
	}
	if Exp32(-200) != 0 || !math.IsInf(float64(Exp32(100)), 1) || Exp32(0) != 1 {
		t.Errorf("limits: %v %v %v", Exp32(-200), Exp32(100), Exp32(0))
	}
	rng := rand.New(rand.NewPCG(4, 4))
	saved := hasAVX512
	defer func() { hasAVX512 = saved }()
	for _, simd := range []bool{saved, false} {
		hasAVX512 = simd
		for _, n := range []int{1, 4, 15, 16, 17, 100, 4096} {
			x := randF32(rng, n)
			for i := range x {
				x[i] *= 30 // wide range, deep underflow included
			}
			y := append([]float32(nil), x...)
			SoftmaxScaled(x, 0.5)
			for i := range y {
				y[i] *= 0.5
			}
			Softmax(y)
			for i := range x {
				if math.Abs(float64(x[i]-y[i])) > 1e-6*math.Max(1, float64(y[i])) {
					t.Fatalf("simd=%v n=%d: SoftmaxScaled[%d] = %v, Softmax %v", simd, n, i, x[i], y[i])
				}
			}
		}
	}
}

// TestBidirectionalAttention compares the micro-kernel path with a plain
// computation, for query counts that leave remainders.
func TestBidirectionalAttention(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, c := range []struct{ nq, n, hd int }{{64, 64, 16}, {7, 96, 72}, {9, 40, 72}, {4, 32, 80}, {37, 160, 72}, {16, 96, 72}} {
		q := randF32(rng, c.nq*c.hd)
		k := randF32(rng, c.n*c.hd)
		v := randF32(rng, c.n*c.hd)
		kt := make([]float32, c.hd*c.n)
		vpad := make([]float32, c.n*HeadDimPadded)
		for j := range c.n {
			for d := range c.hd {
				kt[d*c.n+j] = k[j*c.hd+d]
				vpad[j*HeadDimPadded+d] = v[j*c.hd+d]
			}
		}
		scale := float32(0.125)
		got := make([]float32, c.nq*c.hd)
		for _, simd := range []bool{hasAVX512, false} {
			saved := hasAVX512
			hasAVX512 = simd
			BidirectionalAttention(got, c.hd, q, c.hd, kt, vpad, c.nq, c.n, c.hd, scale, make([]float32, AttentionScratch(c.n)))
			hasAVX512 = saved
			for i := range c.nq {
				s := make([]float32, c.n)
				for j := range c.n {
					s[j] = DotRef(q[i*c.hd:(i+1)*c.hd], k[j*c.hd:(j+1)*c.hd]) * scale
				}
				Softmax(s)
				for d := range c.hd {
					var want float32
					for j := range c.n {
						want += s[j] * v[j*c.hd+d]
					}
					if math.Abs(float64(got[i*c.hd+d]-want)) > 1e-5 {
						t.Fatalf("%+v simd=%v: out[%d][%d] = %v, want %v", c, simd, i, d, got[i*c.hd+d], want)
					}
				}
			}
		}
	}
}

// BenchmarkMatMulPrefill multiplies 256 tokens by bf16 weights of SigLIP's
// and Gemma's shapes, and by quantized ones of Gemma 3 4B's MLP (the tile
// kernels where the CPU has VNNI); run with -cpu 1 for one core's GFLOP/s.
func BenchmarkMatMulPrefill(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, s := range []struct {
		rows, cols int
		d          DType
	}{{1152, 1152, BF16}, {4304, 1152, BF16}, {2560, 10240, BF16},
		{10240, 2560, Q8_0}, {2560, 10240, Q8_0}, {10240, 2560, Q4_K}, {2560, 10240, Q4_K},
		{10240, 2560, Q6_K}, {2560, 10240, Q6_K}} {
		rows, cols, n := s.rows, s.cols, 256
		w := &Mat{Rows: rows, Cols: cols, DType: s.d}
		if s.d == BF16 {
			w.Raw = randBF16(rng, rows*cols)
		} else {
			w.Q = randBlocks(rng, s.d, rows, cols)
		}
		x, out := randF32(rng, n*cols), make([]float32, n*rows)
		b.Run(fmt.Sprintf("%s/%dx%d", s.d, rows, cols), func(b *testing.B) {
			for b.Loop() {
				MatMul(out, x, n, w)
			}
			b.ReportMetric(2*float64(rows*cols*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestGELUTanhSlice compares the vector GELU with the scalar one (tanh in
// float64) over the range activations take, and past where tanh saturates.
func TestGELUTanhSlice(t *testing.T) {
	saved := hasAVX512
	defer func() { hasAVX512 = saved }()
	for _, simd := range []bool{saved, false} {
		hasAVX512 = simd
		var x []float32
		for v := float32(-12); v <= 12; v += 0.001 {
			x = append(x, v)
		}
		x = append(x, 0, float32(math.Copysign(0, -1)), 1e-8, -1e-8, 50, -50, 1e4, -1e4)
		got := append([]float32(nil), x...)
		GELUTanhSlice(got)
		for i, v := range x {
			want := GELUTanh(v)
			if d := math.Abs(float64(got[i] - want)); d > 1e-6*math.Max(1, math.Abs(float64(want))) {
				t.Fatalf("simd=%v: GELU(%v) = %v, want %v", simd, v, got[i], want)
			}
		}
	}
}

type sumJob struct {
	in  []float32
	out []float32
}

func (j *sumJob) Do(_, lo, hi int) {
	for i := lo; i < hi; i++ {
		j.out[i] = j.in[i] * 2
	}
}

// TestPoolRun: a job split across threads covers every item once and
// allocates nothing.
func TestPoolRun(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		pool := NewPool(threads)
		for _, n := range []int{0, 1, 5, 64, 1001} {
			j := &sumJob{in: make([]float32, n), out: make([]float32, n)}
			for i := range j.in {
				j.in[i] = float32(i)
			}
			pool.Run(n, 1, j)
			for i, v := range j.out {
				if v != float32(2*i) {
					t.Fatalf("threads %d n %d: item %d = %v", threads, n, i, v)
				}
			}
		}
		j := &sumJob{in: make([]float32, 512), out: make([]float32, 512)}
		pool.Run(512, 1, j)
		if a := testing.AllocsPerRun(50, func() { pool.Run(512, 1, j) }); a != 0 {
			t.Errorf("threads %d: Run allocates %v times", threads, a)
		}
	}
}

// TestHotWorkers: products and jobs finish with the hot workers polling
// (back to back), parked (after a pause longer than hotSpin: the next task
// must wake them), and busy with other callers' shares (eight goroutines
// at once: the tasks that find no free hot worker go to the pool's
// goroutines), every result right.
func TestHotWorkers(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	w := &Mat{Rows: 512, Cols: 256, DType: BF16, Raw: randBF16(rng, 512*256)}
	x := randF32(rng, 3*256)
	want := make([]float32, 3*512)
	MatMulRef(want, x, 3, w)
	check := func(what string, got []float32) {
		for i := range got {
			if !close32(got[i], want[i], 256) {
				t.Errorf("%s: out[%d] = %v, reference %v", what, i, got[i], want[i])
				return
			}
		}
	}
	pool := NewPool(4)
	for round := range 3 {
		got := make([]float32, 3*512)
		pool.MatMul(got, x, 3, w)
		check("back to back", got)
		if round < 2 {
			time.Sleep(2 * hotSpin) // the hot workers park
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 20 {
				got := make([]float32, 3*512)
				NewPool(2+g%3).MatMul(got, x, 3, w)
				check("concurrent", got)
				j := &sumJob{in: make([]float32, 300), out: make([]float32, 300)}
				for i := range j.in {
					j.in[i] = float32(i)
				}
				NewPool(3).Run(300, 1, j)
				for i, v := range j.out {
					if v != float32(2*i) {
						t.Errorf("concurrent Run: item %d = %v", i, v)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkMatMulBatch multiplies the few tokens of a batched decode step
// (one per sequence), up to a prefill's chunk, by the bf16 matrices of Gemma
// 3 4B's MLP (up: 10240x2560, down: 2560x10240), on one core, through each
// path: the 4x4 micro-kernels (blocked) and the gemm tiles. Where gemm
// overtakes blocked is gemmMinTokens.
func BenchmarkMatMulBatch(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, shape := range [][2]int{{10240, 2560}, {2560, 10240}} {
		rows, cols := shape[0], shape[1]
		w := &Mat{Rows: rows, Cols: cols, DType: BF16, Raw: randBF16(rng, rows*cols)}
		for _, n := range []int{4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024} {
			x, out := randF32(rng, n*cols), make([]float32, n*rows)
			b.Run(fmt.Sprintf("%dx%d/blocked/%d", rows, cols, n), func(b *testing.B) {
				for b.Loop() {
					blocked(out, x, n, rows, cols, 0, rows, w.Raw, nil, nil, BF16)
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
			if hasAVX512 {
				b.Run(fmt.Sprintf("%dx%d/gemm/%d", rows, cols, n), func(b *testing.B) {
					for b.Loop() {
						gemmRowsRange(out, x, n, rows, cols, 0, rows, w.Raw, false, nil)
					}
					b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
				})
			}
		}
	}
}

// BenchmarkMatMulDecodeStep is a batched decode step's products as the
// model runs them: all threads, eight 10240x2560 matrices (420 MB in bf16,
// 223 MB in Q8_0, 118 MB in Q4_K, so the weights come from memory as a
// layer's do), 1 to 16 tokens. One token is bound by memory bandwidth; 16
// come near the arithmetic peak (GFLOP/s). Quantized types run with 8-bit
// activations through each integer kernel the CPU has (act8: VNNI, avx2),
// and with float32 ones (f32act; f32act-go: without AVX-512, as on a CPU
// with AVX2 only and no integer kernels).
func BenchmarkMatMulDecodeStep(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	rows, cols := 10240, 2560
	for _, d := range []DType{BF16, Q8_0, Q4_K, Q6_K} {
		ws := make([]*Mat, 8)
		bytes := 0
		for i := range ws {
			ws[i] = &Mat{Rows: rows, Cols: cols, DType: d}
			if d == BF16 {
				ws[i].Raw = randBF16(rng, rows*cols)
			} else {
				ws[i].Q = randBlocks(rng, d, rows, cols)
			}
			bytes += rows * RowBytes(d, cols)
		}
		modes := []string{""}
		if d.Quantized() {
			modes = []string{"/f32act", "/f32act-go"}
			if hasVNNI {
				modes = append(modes, "/act8")
			}
			if hasAVX2Int {
				modes = append(modes, "/avx2")
			}
		}
		for _, mode := range modes {
			for _, n := range []int{1, 4, 8, 16, 64} {
				x, out := randF32(rng, n*cols), make([]float32, n*rows)
				b.Run(fmt.Sprintf("%s%s/%d", d, mode, n), func(b *testing.B) {
					saved512, savedV := hasAVX512, hasVNNI
					defer func() { hasAVX512, hasVNNI = saved512, savedV }()
					hasAVX512 = hasAVX512 && mode != "/f32act-go"
					hasVNNI = hasVNNI && mode != "/avx2"
					defer SetInt8Activations(SetInt8Activations(mode == "/act8" || mode == "/avx2"))
					for b.Loop() {
						for _, w := range ws {
							MatMul(out, x, n, w)
						}
					}
					flops := 2 * float64(rows) * float64(cols) * float64(n) * float64(len(ws))
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "weight-GB/s")
				})
			}
		}
	}
}

// TestQuantizedMatMul: with float32 activations (CPUs without VNNI),
// products over every block format equal the reference (rows widened by
// Dequantize, then dotted), threaded or not, and a token's result is
// bitwise the same alone or batched.
func TestQuantizedMatMul(t *testing.T) {
	saved, savedA := hasAVX512, useAct8
	defer func() { hasAVX512, useAct8 = saved, savedA }()
	useAct8 = false
	for _, simd := range []bool{saved, false} {
		hasAVX512 = simd
		testQuantizedMatMul(t)
	}
}

func testQuantizedMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, d := range []DType{Q8_0, Q4_0, Q4_K, Q5_K, Q6_K} {
		rows, cols := 13, 2*QKK
		// Keep the float16 scales finite and small: bytes that would make
		// them inf or NaN are cleared of their exponent's top bits.
		q := randBlocksMasked(rng, d, rows, cols, 0x3b)
		w := &Mat{Rows: rows, Cols: cols, DType: d, Q: q}
		for _, n := range []int{1, 3, 8} {
			x := randF32(rng, n*cols)
			got, want := make([]float32, n*rows), make([]float32, n*rows)
			NewPool(2).MatMul(got, x, n, w)
			MatMulRef(want, x, n, w)
			for i := range got {
				if !close32(got[i], want[i], float64(cols)*10) {
					t.Fatalf("%s n=%d [%d]: %v, reference %v", d, n, i, got[i], want[i])
				}
			}
			alone := make([]float32, rows)
			for tk := range n {
				NewPool(1).MatMul(alone, x[tk*cols:(tk+1)*cols], 1, w)
				for r, v := range alone {
					if got[tk*rows+r] != v {
						t.Fatalf("%s n=%d token %d row %d: batched %v, alone %v", d, n, tk, r, got[tk*rows+r], v)
					}
				}
			}
		}
	}
}

// scaleOffsets are where a block's float16 scales sit.
func scaleOffsets(d DType, blockBytes int) []int {
	switch d {
	case Q4_K, Q5_K:
		return []int{0, 2}
	case Q6_K:
		return []int{blockBytes - 2}
	}
	return []int{0}
}

// TestF32ToF16: every half survives a round trip; values between two halves
// round to the nearer, ties to the even one; out of range gives infinity.
func TestF32ToF16(t *testing.T) {
	for h := range 1 << 16 {
		f := F16ToF32(uint16(h))
		if f != f {
			if F32ToF16(f)&0x7c00 != 0x7c00 || F32ToF16(f)&0x3ff == 0 {
				t.Fatalf("NaN %#x -> %#x", h, F32ToF16(f))
			}
			continue
		}
		if got := F32ToF16(f); got != uint16(h) {
			t.Fatalf("%#x (%v) -> %#x", h, f, got)
		}
		// Halfway to the next half (same sign, larger magnitude).
		if next := uint16(h) + 1; next&0x7c00 != 0x7c00 && h&0x7fff != 0x7bff {
			mid := float32((float64(f) + float64(F16ToF32(next))) / 2)
			want := uint16(h)
			if h&1 == 1 {
				want = next
			}
			if got := F32ToF16(mid); got != want {
				t.Fatalf("midpoint of %#x and %#x (%v) -> %#x, want %#x", h, next, mid, got, want)
			}
		}
	}
	for _, c := range []struct {
		f    float32
		want uint16
	}{{65520, 0x7c00}, {-1e10, 0xfc00}, {1e-10, 0}, {5.960464477539063e-08, 1}, {65504, 0x7bff}} {
		if got := F32ToF16(c.f); got != c.want {
			t.Errorf("%v -> %#x, want %#x", c.f, got, c.want)
		}
	}
}

// TestQuantizeRoundTrip: quantizing then dequantizing normal weights keeps
// them within the types' resolution (RMS error relative to the weights'),
// and all-zero blocks stay zero.
func TestQuantizeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	x := randF32(rng, 4*QKK)
	for _, c := range []struct {
		d     DType
		q     func([]byte, []float32)
		bound float64
	}{{Q8_0, QuantizeQ8_0, 0.01}, {Q4_0, QuantizeQ4_0, 0.12}, {Q6_K, QuantizeQ6_K, 0.04}, {Q4_K, QuantizeQ4_K, 0.1}, {Q5_K, QuantizeQ5_K, 0.05}} {
		buf := make([]byte, RowBytes(c.d, len(x)))
		c.q(buf, x)
		y := make([]float32, len(x))
		Dequantize(c.d, y, buf)
		var e, s float64
		for i := range x {
			e += float64((y[i] - x[i]) * (y[i] - x[i]))
			s += float64(x[i] * x[i])
		}
		if r := math.Sqrt(e / s); r > c.bound {
			t.Errorf("%s: relative RMS error %.4f", c.d, r)
		}
		zero := make([]float32, QKK)
		c.q(buf[:RowBytes(c.d, QKK)], zero)
		Dequantize(c.d, y[:QKK], buf[:RowBytes(c.d, QKK)])
		for i, v := range y[:QKK] {
			if v != 0 {
				t.Fatalf("%s: zero block gives %v at %d", c.d, v, i)
			}
		}
	}
}
