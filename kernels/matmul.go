package kernels

// MatMul computes y = x W^T for n rows of x (see MatMulRef), with float32
// accumulation over the weights in their stored dtype.
func MatMul(out, x []float32, n int, w *Mat) {
	MatMulRef(out, x, n, w)
}

// MatMulTRef computes out[t*Cols+c] = sum_r x[t*Rows+r] * W[r,c]: y = x W, for
// weights stored [in, out] (Gemma 3's mm_input_projection_weight).
func MatMulTRef(out, x []float32, n int, w *Mat) {
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
