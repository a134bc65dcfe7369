package kernels

// Product is one of the products MatMuls computes: Out = x W^T.
type Product struct {
	Out []float32
	W   *Mat
}

// maxProducts is the most products one MatMuls call takes.
const maxProducts = 4

// productsJob runs MatMuls' products as one job over their rows, in
// groups of 8 (the tiles' rows): item g is group g of the products' rows
// one after the other (groups[i] is product i's first).
type productsJob struct {
	x      []float32
	n      int
	np     int
	ps     [maxProducts]Product
	a      [maxProducts]*act8
	groups [maxProducts + 1]int
}

func (j *productsJob) Do(_, lo, hi int) {
	for i := range j.np {
		g0, g1 := max(lo, j.groups[i]), min(hi, j.groups[i+1])
		if g0 >= g1 {
			continue
		}
		w := j.ps[i].W
		matMulRows(j.ps[i].Out, j.x, j.n, w, j.a[i], (g0-j.groups[i])*8, min((g1-j.groups[i])*8, w.Rows))
	}
}

// productsJobs keeps jobs for the next call.
var productsJobs freeList[productsJob]

// MatMuls computes up to four products of the same n rows of x (each W
// with x's columns), each bit for bit as MatMul computes it, in one pass
// across the pool's threads: one wait for all instead of one per product
// (Q, K and V; gate and up), and the activations quantized once per weight
// type where the products take 8-bit activations. It allocates nothing.
func (pool Pool) MatMuls(x []float32, n int, ps ...Product) {
	if len(ps) > maxProducts {
		panic("kernels: MatMuls takes at most 4 products")
	}
	j := productsJobs.get(func() *productsJob { return new(productsJob) })
	j.x, j.n, j.np = x, n, len(ps)
	var own [maxProducts]*act8 // the buffers quantized here, each once
	work := 0
	for i, p := range ps {
		j.ps[i], j.a[i] = p, nil
		j.groups[i+1] = j.groups[i] + (p.W.Rows+7)/8
		work += p.W.Rows * p.W.Cols * n
		if !takesAct8(p.W) {
			continue
		}
		for k := range i { // the same layout quantized already
			if j.a[k] != nil && j.ps[k].W.DType == p.W.DType {
				j.a[i] = j.a[k]
				break
			}
		}
		if j.a[i] == nil {
			j.a[i] = pool.quantizeActs(x, n, p.W.Cols, p.W.DType)
			own[i] = j.a[i]
		}
	}
	if pool.Threads() <= 1 || work < 1<<15 {
		j.Do(0, 0, j.groups[j.np])
	} else {
		pool.Run(j.groups[j.np], 1, j)
	}
	for i, a := range own[:j.np] {
		if a != nil {
			putAct8(a)
		}
		j.ps[i], j.a[i] = Product{}, nil
	}
	j.x = nil
	productsJobs.put(j)
}
