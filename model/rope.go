package model

import "math"

// rope is a rotary position embedding as transformers computes it, in
// float32: inv_freq[i] = 1 / base^(2i/dim), divided by the linear scaling
// factor; the angle is inv_freq * position; the two halves of each head
// vector are rotated together (rotate_half).
type rope struct {
	invFreq []float32
}

func newRope(dim int, base, factor float64) rope {
	r := rope{invFreq: make([]float32, dim/2)}
	for i := range r.invFreq {
		exp := float32(2*i) / float32(dim)
		f := float32(1) / float32(math.Pow(base, float64(exp)))
		r.invFreq[i] = f / float32(factor)
	}
	return r
}

// table fills cos and sin (len dim/2 each) for a position.
func (r rope) table(cos, sin []float32, pos int) {
	p := float32(pos)
	for i, f := range r.invFreq {
		a := float64(f * p)
		cos[i] = float32(math.Cos(a))
		sin[i] = float32(math.Sin(a))
	}
}

// apply rotates one head vector x (len dim) in place.
func applyRope(x, cos, sin []float32) {
	half := len(x) / 2
	x1, x2 := x[:half], x[half:2*half]
	for i := range x1 {
		a, b := x1[i], x2[i]
		x1[i] = a*cos[i] - b*sin[i]
		x2[i] = b*cos[i] + a*sin[i]
	}
}
