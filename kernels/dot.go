package kernels

// DotBF16 is the dot product of bf16 weights w and float32 x (same length),
// accumulated in float32.
func DotBF16(w []uint16, x []float32) float32 {
	n := len(w)
	x = x[:n]
	var s float32
	head := 0
	switch {
	case hasAVX512 && n >= 16:
		head = n &^ 15
		s = dotBF16AVX512(&w[0], &x[0], head)
	case hasAVX2 && n >= 8:
		head = n &^ 7
		s = dotBF16AVX2(&w[0], &x[0], head)
	}
	for i := head; i < n; i++ {
		s += BF16ToF32(w[i]) * x[i]
	}
	return s
}

// DotBF16Ref is the plain-Go reference of DotBF16.
func DotBF16Ref(w []uint16, x []float32) float32 {
	var s float32
	for i, h := range w {
		s += BF16ToF32(h) * x[i]
	}
	return s
}

// Dot is the float32 dot product of a and b (same length).
func Dot(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s float32
	head := 0
	if hasAVX2 && n >= 8 {
		head = n &^ 7
		s = dotF32AVX2(&a[0], &b[0], head)
	}
	for i := head; i < n; i++ {
		s += a[i] * b[i]
	}
	return s
}

// dot4BF16 dots one bf16 row with four rows of x starting at x[0], x[stride],
// x[2*stride], x[3*stride], each len(w) long.
func dot4BF16(out *[4]float32, w []uint16, x []float32, stride int) {
	n := len(w)
	_ = x[3*stride+n-1]
	head := 0
	switch {
	case hasAVX512 && n >= 16:
		head = n &^ 15
		dot4BF16AVX512(&w[0], &x[0], stride, head, out)
	case hasAVX2 && n >= 8:
		head = n &^ 7
		dot4BF16AVX2(&w[0], &x[0], stride, head, out)
	default:
		*out = [4]float32{}
	}
	for i := head; i < n; i++ {
		v := BF16ToF32(w[i])
		out[0] += v * x[i]
		out[1] += v * x[stride+i]
		out[2] += v * x[2*stride+i]
		out[3] += v * x[3*stride+i]
	}
}

// HasAVX2 reports whether the AVX2+FMA kernels are in use on this CPU.
func HasAVX2() bool { return hasAVX2 }

// HasAVX512 reports whether the AVX-512 kernels are in use on this CPU.
func HasAVX512() bool { return hasAVX512 }

// Axpy adds a*x to y (same length).
func Axpy(a float32, x, y []float32) {
	n := len(x)
	y = y[:n]
	head := 0
	if hasAVX2 && n >= 8 {
		head = n &^ 7
		axpyAVX2(a, &x[0], &y[0], head)
	}
	for i := head; i < n; i++ {
		y[i] += a * x[i]
	}
}

// AxpyRef is the plain-Go reference of Axpy.
func AxpyRef(a float32, x, y []float32) {
	for i, v := range x {
		y[i] += a * v
	}
}

// dot4x4BF16 computes out[r*4+t] = dot(w row r, x row t) for four consecutive
// weight rows (w[r*wstride:], len n) and four x rows (x[t*xstride:]). It uses
// the AVX-512 micro-kernel when present, else four dot4BF16. The AVX-512
// kernel also prefetches into L2 up to lines 64-byte lines from pf (an
// address only, never dereferenced by Go; 0 lines for none).
func dot4x4BF16(out *[16]float32, w []uint16, wstride int, x []float32, xstride, n int, pf uintptr, lines int) {
	_ = w[3*wstride+n-1]
	_ = x[3*xstride+n-1]
	if !hasAVX512 || n < 16 {
		var o [4]float32
		for r := range 4 {
			dot4BF16(&o, w[r*wstride:r*wstride+n], x, xstride)
			copy(out[r*4:r*4+4], o[:])
		}
		return
	}
	head := n &^ 15
	dot4x4BF16AVX512(&w[0], wstride, &x[0], xstride, head, out, pf, lines)
	if head < n {
		for i := range out {
			r, t := i/4, i%4
			for c := head; c < n; c++ {
				out[i] += BF16ToF32(w[r*wstride+c]) * x[t*xstride+c]
			}
		}
	}
}

// dot4x1BF16 computes out[r] = dot(w row r, x) for four consecutive weight
// rows (w[r*wstride:], len n): the AVX-512 kernel sums as dot4x4BF16 does
// for its first token, bitwise, and prefetches likewise; without it, four
// DotBF16.
func dot4x1BF16(out *[4]float32, w []uint16, wstride int, x []float32, n int, pf uintptr, lines int) {
	_ = w[3*wstride+n-1]
	_ = x[n-1]
	if !hasAVX512 || n < 16 {
		for r := range out {
			out[r] = DotBF16(w[r*wstride:r*wstride+n], x[:n])
		}
		return
	}
	var sums [16]float32
	head := n &^ 15
	dot4x1BF16AVX512(&w[0], wstride, &x[0], head, &sums, pf, lines)
	for r := range out {
		s := sums[r*4]
		for c := head; c < n; c++ {
			s += BF16ToF32(w[r*wstride+c]) * x[c]
		}
		out[r] = s
	}
}

// dot4x4F32 is dot4x4BF16 for float32 weights.
func dot4x4F32(out *[16]float32, w []float32, wstride int, x []float32, xstride, n int) {
	_ = w[3*wstride+n-1]
	_ = x[3*xstride+n-1]
	if !hasAVX512 || n < 16 {
		for i := range out {
			r, t := i/4, i%4
			out[i] = Dot(w[r*wstride:r*wstride+n], x[t*xstride:t*xstride+n])
		}
		return
	}
	head := n &^ 15
	dot4x4F32AVX512(&w[0], wstride, &x[0], xstride, head, out)
	if head < n {
		for i := range out {
			r, t := i/4, i%4
			for c := head; c < n; c++ {
				out[i] += w[r*wstride+c] * x[t*xstride+c]
			}
		}
	}
}
