package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestMatMuls: several products of the same activations in one pass give
// each product's MatMul result bit for bit (types mixed, some sharing
// their quantized activations, tiled or not, threads 1 to 3), and a
// decode step's call allocates nothing.
func TestMatMuls(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	cols := 2 * QKK
	mat := func(d DType, rows int) *Mat {
		w := &Mat{Rows: rows, Cols: cols, DType: d}
		switch d {
		case BF16:
			w.Raw = randBF16(rng, rows*cols)
		default:
			w.Q = randBlocks(rng, d, rows, cols)
		}
		return w
	}
	for _, set := range [][]*Mat{
		{mat(Q4_K, 40), mat(Q4_K, 20), mat(Q6_K, 21)},
		{mat(Q8_0, 64), mat(Q8_0, 64)},
		{mat(BF16, 13), mat(Q5_K, 30), mat(Q4_0, 7), mat(Q4_K, 9)},
	} {
		for _, n := range []int{1, 5, 40} {
			for _, threads := range []int{1, 2, 3} {
				name := fmt.Sprintf("%s.. n=%d threads=%d", set[0].DType, n, threads)
				x := randF32(rng, n*cols)
				var ps []Product
				for _, w := range set {
					ps = append(ps, Product{Out: make([]float32, n*w.Rows), W: w})
				}
				pool := NewPool(threads)
				pool.MatMuls(x, n, ps...)
				for i, p := range ps {
					want := make([]float32, n*p.W.Rows)
					pool.MatMul(want, x, n, p.W)
					for e, v := range want {
						if p.Out[e] != v {
							t.Fatalf("%s: product %d [%d] = %v, MatMul %v", name, i, e, p.Out[e], v)
						}
					}
				}
			}
		}
	}
	set := []Product{{make([]float32, 1024), mat(Q4_K, 1024)}, {make([]float32, 512), mat(Q4_K, 512)}, {make([]float32, 512), mat(Q6_K, 512)}}
	x, pool := randF32(rng, cols), NewPool(2)
	pool.MatMuls(x, 1, set...)
	if n := testing.AllocsPerRun(50, func() { pool.MatMuls(x, 1, set[0], set[1], set[2]) }); n != 0 {
		t.Errorf("MatMuls allocates %v times per call", n)
	}
}
