package generate

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/medgemma/medgemma/kernels"
)

// TokenLogprob is a token and its log probability under the model.
type TokenLogprob struct {
	Token   int32
	Logprob float32
}

// Sampler picks the next token from logits. It keeps the counts the
// penalties need and its scratch buffers, so sampling allocates nothing per
// token once warmed up. Not safe for concurrent use.
type Sampler struct {
	o      Options
	rng    *rand.Rand
	seen   []bool  // prompt and generated tokens (repetition penalty)
	counts []int32 // generated tokens (frequency and presence penalties)
	work   []float32
	cand   []int32
	probs  []float64
}

// NewSampler prepares sampling over a vocabulary of the given size after the
// prompt.
func NewSampler(o Options, vocab int, prompt []int32) *Sampler {
	seed := o.Seed
	if !o.HasSeed {
		seed = rand.Uint64()
	}
	s := &Sampler{
		o:      o,
		rng:    rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)),
		seen:   make([]bool, vocab),
		counts: make([]int32, vocab),
		work:   make([]float32, vocab),
		cand:   make([]int32, 0, vocab),
		probs:  make([]float64, 0, vocab),
	}
	for _, id := range prompt {
		if id >= 0 && int(id) < vocab {
			s.seen[id] = true
		}
	}
	return s
}

// Observe records a generated token.
func (s *Sampler) Observe(id int32) {
	if id >= 0 && int(id) < len(s.seen) {
		s.seen[id] = true
		s.counts[id]++
	}
}

// penalized reports whether any penalty changes the logits.
func (s *Sampler) penalized() bool {
	p := s.o.RepetitionPenalty
	return (p > 0 && p != 1) || s.o.FrequencyPenalty != 0 || s.o.PresencePenalty != 0
}

// penalize applies the penalties to w.
func (s *Sampler) penalize(w []float32) {
	if p := float32(s.o.RepetitionPenalty); p > 0 && p != 1 {
		for id, seen := range s.seen {
			if seen {
				if w[id] > 0 {
					w[id] /= p
				} else {
					w[id] *= p
				}
			}
		}
	}
	if f, pr := float32(s.o.FrequencyPenalty), float32(s.o.PresencePenalty); f != 0 || pr != 0 {
		for id, c := range s.counts {
			if c > 0 {
				w[id] -= f*float32(c) + pr
			}
		}
	}
}

// Sample returns the next token. logits are not modified (penalties work on
// a copy, made only when one is set).
func (s *Sampler) Sample(logits []float32) int32 {
	w := logits
	if s.penalized() {
		w = s.work[:len(logits)]
		copy(w, logits)
		s.penalize(w)
	}
	if s.o.Temperature == 0 {
		return int32(argmax(w))
	}
	// Candidates: the top-k (or all), sorted by logit, highest first.
	cand := s.cand[:0]
	if k := s.o.TopK; k > 0 && k < len(w) {
		cand = topK(cand, w, k)
	} else {
		// Tokens a grammar masked out (-Inf) cannot be drawn: left out
		// before the sort.
		neg := float32(math.Inf(-1))
		for i, x := range w {
			if x != neg {
				cand = append(cand, int32(i))
			}
		}
		if len(cand) == 0 {
			return int32(argmax(w))
		}
		sort.Slice(cand, func(a, b int) bool { return w[cand[a]] > w[cand[b]] })
	}
	s.cand = cand
	// Softmax at the temperature over the candidates.
	probs := s.probs[:0]
	inv := 1 / s.o.Temperature
	top := float64(w[cand[0]])
	var sum float64
	for _, id := range cand {
		p := math.Exp((float64(w[id]) - top) * inv)
		probs = append(probs, p)
		sum += p
	}
	n := len(probs)
	// Top-p: the smallest prefix whose mass reaches top_p (at least one).
	if tp := s.o.TopP; tp > 0 && tp < 1 {
		var cum float64
		for i, p := range probs {
			cum += p / sum
			if cum >= tp {
				n = i + 1
				break
			}
		}
	}
	// Min-p: drop tokens below min_p times the most likely one.
	if mp := s.o.MinP; mp > 0 {
		for i := 1; i < n; i++ {
			if probs[i] < mp*probs[0] {
				n = i
				break
			}
		}
	}
	// Candidates of no probability (masked out, or far below the best)
	// are never drawn, not even by rounding at the end of the walk below.
	for n > 1 && probs[n-1] == 0 {
		n--
	}
	var mass float64
	for _, p := range probs[:n] {
		mass += p
	}
	r := s.rng.Float64() * mass
	for i, p := range probs[:n] {
		r -= p
		if r < 0 {
			return cand[i]
		}
	}
	return cand[n-1]
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// topK appends to dst the indices of the k largest values of v, largest
// first (ties: lower index first).
func topK(dst []int32, v []float32, k int) []int32 {
	dst = dst[:0]
	less := func(a, b int32) bool { // a ranks below b
		return v[a] < v[b] || (v[a] == v[b] && a > b)
	}
	// A min-heap of the best k so far.
	for i := range v {
		id := int32(i)
		if len(dst) < k {
			dst = append(dst, id)
			for c := len(dst) - 1; c > 0; {
				p := (c - 1) / 2
				if !less(dst[c], dst[p]) {
					break
				}
				dst[c], dst[p] = dst[p], dst[c]
				c = p
			}
			continue
		}
		if !less(dst[0], id) {
			continue
		}
		dst[0] = id
		for c := 0; ; {
			l, r, m := 2*c+1, 2*c+2, c
			if l < k && less(dst[l], dst[m]) {
				m = l
			}
			if r < k && less(dst[r], dst[m]) {
				m = r
			}
			if m == c {
				break
			}
			dst[c], dst[m] = dst[m], dst[c]
			c = m
		}
	}
	sort.Slice(dst, func(a, b int) bool { return less(dst[b], dst[a]) })
	return dst
}

// Logprobs returns the log probability of chosen under the raw logits
// (log-softmax, as OpenAI reports it) and the n most likely alternatives
// (fewer when fewer have a probability: -Inf logits are masked out).
// dst is reused for the alternatives.
func Logprobs(logits []float32, chosen int32, n int, dst []TokenLogprob, scratch []int32) (float32, []TokenLogprob, []int32) {
	lse := kernels.LogSumExp(logits)
	dst = dst[:0]
	if n > 0 {
		scratch = topK(scratch, logits, n)
		for _, id := range scratch {
			if math.IsInf(float64(logits[id]), -1) {
				break // masked out by a grammar: not an alternative
			}
			dst = append(dst, TokenLogprob{id, float32(float64(logits[id]) - lse)})
		}
	}
	return float32(float64(logits[chosen]) - lse), dst, scratch
}
