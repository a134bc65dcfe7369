package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// maxThreads bounds the worker pool.
const maxThreads = 256

var (
	tasks       = make(chan *task, maxThreads)
	startOnce   sync.Once
	workerCount int
)

// Pool is a degree of parallelism: how many shares MatMul and ParallelFor
// split their work into. Each model holds its own (a setting of the model,
// not of the process); the goroutines that run the shares are shared. The
// zero Pool uses GOMAXPROCS threads.
type Pool struct{ threads int }

// NewPool returns a pool of n threads; n <= 0 means GOMAXPROCS.
func NewPool(n int) Pool { return Pool{threads: min(max(n, 0), maxThreads)} }

// Threads reports the number of threads the pool uses.
func (p Pool) Threads() int {
	if p.threads > 0 {
		return p.threads
	}
	return min(runtime.GOMAXPROCS(0), maxThreads)
}

// Threads reports the number of threads the package-level kernels use
// (GOMAXPROCS).
func Threads() int { return Pool{}.Threads() }

// task is one share of a matrix product (rows lo..hi) or of a Job.
type task struct {
	out, x []float32
	n      int
	w      *Mat
	a      *act8
	job    Job
	share  int
	lo, hi int
	wg     *sync.WaitGroup
	left   *atomic.Int32 // the batch's tasks not done
}

// Job is work that Pool.Run splits across threads: Do runs items lo..hi as
// share number share (0 for the calling goroutine's; shares run
// concurrently, so per-share scratch may be indexed by it). A Job is
// typically a pointer to a struct kept from call to call, so that running
// it allocates nothing.
type Job interface{ Do(share, lo, hi int) }

// MaxShares is the most shares Pool.Run splits work into.
const MaxShares = maxThreads

// batch holds the tasks of one parallel product; batches are reused so that
// a product allocates nothing.
type batch struct {
	wg   sync.WaitGroup
	left atomic.Int32
	t    [maxThreads]task
}

// batches keeps finished batches for the next product.
var batches freeList[batch]

func getBatch() *batch  { return batches.get(func() *batch { return new(batch) }) }
func putBatch(b *batch) { batches.put(b) }

// wait returns when the batch's tasks are done: polling first (hotSpin),
// as a hot worker does, since a goroutine parked in Wait wakes late.
func (b *batch) wait() {
	for start := time.Now(); b.left.Load() > 0 && time.Since(start) < hotSpin; {
		runtime.Gosched()
	}
	b.wg.Wait()
}

func startWorkers() {
	workerCount = min(max(runtime.NumCPU(), runtime.GOMAXPROCS(0)), maxThreads)
	for range workerCount {
		go func() {
			for t := range tasks {
				t.run()
			}
		}()
	}
	hot = make([]hotWorker, max(min(runtime.NumCPU(), runtime.GOMAXPROCS(0), maxThreads)-1, 0))
	for i := range hot {
		hot[i].wake = make(chan struct{}, 1)
		go hot[i].loop()
	}
}

func (t *task) run() {
	if t.job != nil {
		t.job.Do(t.share, t.lo, t.hi)
	} else {
		matMulRows(t.out, t.x, t.n, t.w, t.a, t.lo, t.hi)
	}
	t.left.Add(-1)
	t.wg.Done()
}

// Hot workers. A task sent to a parked goroutine starts late: the Go
// scheduler readies it on the sender's own P, from where another P steals
// it only after an idle thread wakes (tens of microseconds on a VM), so a
// decode step's small products ran on one thread. NumCPU-1 hot workers
// instead poll a slot for a while after each task (hotSpin), so that the
// products of a decode, which come back to back, start on another thread
// at once; idle longer, they park until the next task wakes them. A task
// finding every hot worker busy goes to the pool's goroutines.
var hot []hotWorker

// hotSpin is how long a hot worker polls before parking.
const hotSpin = 200 * time.Microsecond

type hotWorker struct {
	slot   atomic.Pointer[task]
	parked atomic.Bool
	wake   chan struct{}
}

// submit hands t to the first free hot worker, or to the pool's goroutines.
func submit(t *task) {
	for i := range hot {
		w := &hot[i]
		if w.slot.CompareAndSwap(nil, t) {
			if w.parked.Load() {
				select {
				case w.wake <- struct{}{}:
				default:
				}
			}
			return
		}
	}
	tasks <- t
}

func (w *hotWorker) loop() {
	for {
		idleSince := time.Now()
		for {
			if t := w.slot.Load(); t != nil {
				t.run()
				w.slot.Store(nil)
				idleSince = time.Now()
				continue
			}
			if time.Since(idleSince) > hotSpin {
				break
			}
			runtime.Gosched()
		}
		// Park; a task stored before parked is seen is taken now, one
		// stored after finds parked set and wakes us.
		w.parked.Store(true)
		if w.slot.Load() == nil {
			<-w.wake
		}
		w.parked.Store(false)
	}
}

// MatMul computes y = x W^T for n rows of x (see MatMulRef), with float32
// accumulation over the weights in their stored dtype, split by rows across
// GOMAXPROCS threads. It allocates nothing.
func MatMul(out, x []float32, n int, w *Mat) { Pool{}.MatMul(out, x, n, w) }

// MatMul is the package's MatMul split across the pool's threads.
// Quantized weights take 8-bit activations (act8.go) where the CPU has
// integer kernels (AVX-512 VNNI or AVX2) for their type.
func (pool Pool) MatMul(out, x []float32, n int, w *Mat) {
	var a *act8
	if takesAct8(w) {
		a = pool.quantizeActs(x, n, w.Cols, w.DType)
		defer putAct8(a)
	}
	p := pool.Threads()
	if p <= 1 || w.Rows < 2*p || w.Rows*w.Cols*n < 1<<15 {
		matMulRows(out, x, n, w, a, 0, w.Rows)
		return
	}
	startOnce.Do(startWorkers)
	b := getBatch()
	step := (w.Rows + p - 1) / p
	step = (step + 7) &^ 7 // whole groups of 8 rows (the Q8_0 tiles') and 4
	lo := 0
	first := min(step, w.Rows)
	for lo = first; lo < w.Rows; lo += step {
		t := &b.t[lo/step]
		*t = task{out: out, x: x, n: n, w: w, a: a, lo: lo, hi: min(lo+step, w.Rows), wg: &b.wg, left: &b.left}
		b.wg.Add(1)
		b.left.Add(1)
		submit(t)
	}
	matMulRows(out, x, n, w, a, 0, first)
	b.wait()
	for i := range b.t[:(w.Rows+step-1)/step] {
		b.t[i] = task{}
	}
	putBatch(b)
}

// takesAct8 reports whether products with w take 8-bit activations
// (through the SIMD kernels, or the plain-Go path when the tests turn
// useAct8 on without them).
func takesAct8(w *Mat) bool { return useAct8 && act8Layout(w.DType, w.Cols) }

// tokenBlock is how many rows of x are kept hot (in L2) while the weight rows
// stream past them in a prefill: the weights are read from memory once per
// block.
const tokenBlock = 64

// matMulRows computes rows lo..hi of the product, from the quantized
// activations a where they are given.
func matMulRows(out, x []float32, n int, w *Mat, a *act8, lo, hi int) {
	if a != nil {
		blocked8(out, a, w, lo, hi)
		return
	}
	cols, rows := w.Cols, w.Rows
	if hasAVX512 && n >= gemmMinTokens && (w.DType == F32 || w.DType == F16) {
		gemmRowsRange(out, x, n, rows, cols, lo, hi, w.Raw, w.DType == F16, w.F32)
		return
	}
	switch w.DType {
	case BF16:
		blocked(out, x, n, rows, cols, lo, hi, w.Raw, nil, nil, BF16)
	case F32:
		blocked(out, x, n, rows, cols, lo, hi, nil, w.F32, nil, F32)
	case Q8_0, Q4_K, Q6_K:
		if !hasAVX512 { // no tiles: widen each block once for all tokens
			dotQuantRows(out, x, n, w, lo, hi)
			return
		}
		blocked(out, x, n, rows, cols, lo, hi, nil, nil, w.Q, w.DType)
	case Q4_0, Q5_K:
		dotQuantRows(out, x, n, w, lo, hi)
	case F16:
		for r := lo; r < hi; r++ {
			row := w.Raw[r*cols : (r+1)*cols]
			for t := range n {
				xt := x[t*cols : (t+1)*cols]
				var s float32
				for c, h := range row {
					s += F16ToF32(h) * xt[c]
				}
				out[t*rows+r] = s
			}
		}
	}
}

// blocked computes rows lo..hi of a product over n rows of x, the weights
// in bf16 (raw), f32 or a block type qt with tile kernels (q: Q8_0, Q4_K,
// Q6_K): blocks of tokens stay in cache while the
// weight rows stream past, and inside a block 4 rows x 4 tokens at a time
// share their loads (dot4x4); a block's last tokens (all of a single-token
// decode's) go 4 rows x 1 token (dot4x1, summing as dot4x4 does, so a
// token's products are bitwise the same batched or alone), and so do the
// last rows of a share, so a row's result does not depend on the split.
// The kernels are called directly, not through function values, so the
// tiles stay on the stack: a decode step allocates nothing.
//
// The weights are read from memory only by the first call on each group of
// four rows; the block's other calls find them in cache. So that memory is
// not idle meanwhile, each bf16 or block-type call prefetches its share of the
// next four rows into L2 (for one token, all of them: the reads stay a
// group ahead).
func blocked(out, x []float32, n, rows, cols, lo, hi int, raw []uint16, f32 []float32, q []byte, qt DType) {
	var o [16]float32
	var o4 [4]float32
	// Bytes per row, and where the weights start, for the prefetches.
	var rb int
	var base uintptr
	switch {
	case raw != nil:
		rb, base = 2*cols, uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	case q != nil:
		rb, base = RowBytes(qt, cols), uintptr(unsafe.Pointer(unsafe.SliceData(q)))
	}
	blocks := cols / BlockSize(qt)
	for t0 := 0; t0 < n; t0 += tokenBlock {
		t1 := min(t0+tokenBlock, n)
		lines := 0
		if rb > 0 {
			// The next group's 4 rows, split among the block's calls.
			calls := (t1-t0)/4 + (t1-t0)%4
			lines = (4*rb/64 + calls) / calls
		}
		r := lo
		for ; r+4 <= hi; r += 4 {
			t := t0
			pf := base + uintptr((r+4)*rb)
			for ; t+4 <= t1; t += 4 {
				switch {
				case raw != nil:
					dot4x4BF16(&o, raw[r*cols:], cols, x[t*cols:], cols, cols, pf, lines)
				case q != nil:
					dot4x4Q(qt, &o, q[r*rb:], rb, x[t*cols:], cols, blocks, pf, lines)
				default:
					dot4x4F32(&o, f32[r*cols:], cols, x[t*cols:], cols, cols)
				}
				pf += uintptr(lines * 64)
				for i, v := range o {
					out[(t+i%4)*rows+r+i/4] = v
				}
			}
			for ; t < t1; t++ {
				switch {
				case raw != nil:
					dot4x1BF16(&o4, raw[r*cols:], cols, x[t*cols:], cols, pf, lines)
				case q != nil:
					dot4x1Q(qt, &o4, q[r*rb:], rb, x[t*cols:], blocks, pf, lines)
				default:
					for i := range o4 {
						o4[i] = Dot(f32[(r+i)*cols:(r+i+1)*cols], x[t*cols:(t+1)*cols])
					}
				}
				pf += uintptr(lines * 64)
				copy(out[t*rows+r:t*rows+r+4], o4[:])
			}
		}
		// The last rows go through the 4x1 kernels on the row four times
		// over (stride 0): the sum is bitwise what the row gets in a group
		// of four, so results do not depend on where rows split.
		for ; r < hi; r++ {
			for t := t0; t < t1; t++ {
				switch {
				case raw != nil:
					dot4x1BF16(&o4, raw[r*cols:], 0, x[t*cols:], cols, 0, 0)
				case q != nil:
					dot4x1Q(qt, &o4, q[r*rb:], 0, x[t*cols:], blocks, 0, 0)
				default:
					o4[0] = Dot(f32[r*cols:(r+1)*cols], x[t*cols:(t+1)*cols])
				}
				out[t*rows+r] = o4[0]
			}
		}
	}
}

// MatMulT computes out[t*Cols+c] = sum_r x[t*Rows+r] * W[r,c]: y = x W, for
// weights stored [in, out] (Gemma 3's mm_input_projection_weight).
func MatMulT(out, x []float32, n int, w *Mat) {
	row := make([]float32, w.Cols)
	clear(out[:n*w.Cols])
	for r := range w.Rows {
		w.Row(row, r)
		for t := range n {
			xv := x[t*w.Rows+r]
			o := out[t*w.Cols : (t+1)*w.Cols]
			for c, v := range row {
				o[c] += xv * v
			}
		}
	}
}

// Run splits items 0..n into one contiguous share per thread (at least
// minPer items each) and runs job on them concurrently, the calling
// goroutine taking the first share. It allocates nothing.
func (pool Pool) Run(n, minPer int, job Job) {
	p := min(pool.Threads(), n/max(minPer, 1))
	if p <= 1 {
		if n > 0 {
			job.Do(0, 0, n)
		}
		return
	}
	startOnce.Do(startWorkers)
	b := getBatch()
	step := (n + p - 1) / p
	shares := 0
	for lo := step; lo < n; lo += step {
		shares++
		t := &b.t[shares-1]
		*t = task{job: job, share: shares, lo: lo, hi: min(lo+step, n), wg: &b.wg, left: &b.left}
		b.wg.Add(1)
		b.left.Add(1)
		submit(t)
	}
	job.Do(0, 0, min(step, n))
	b.wait()
	for i := range b.t[:shares] {
		b.t[i] = task{}
	}
	putBatch(b)
}

// ParallelFor splits 0..n into one contiguous range per thread and runs fn on
// each concurrently. It is for coarse work (it allocates); the per-token
// paths use MatMul's workers.
func ParallelFor(n int, fn func(lo, hi int)) { Pool{}.ParallelFor(n, fn) }

// ParallelFor is the package's ParallelFor over the pool's threads.
func (pool Pool) ParallelFor(n int, fn func(lo, hi int)) {
	p := min(pool.Threads(), n)
	if p <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + p - 1) / p
	for lo := 0; lo < n; lo += step {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, min(lo+step, n))
	}
	wg.Wait()
}
