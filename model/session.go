package model

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/medgemma/medgemma/kernels"
)

// Hook, when set on a Session, receives intermediate tensors by name, as
// transformers would dump them: "inputs_embeds", "layer.N" (each decoder
// layer's output), "final_norm". Each call gets n rows of hidden_size.
type Hook func(name string, data []float32, n int)

// Session is one sequence being processed: its KV cache and the scratch
// buffers of a forward pass, allocated once for the largest chunk so that
// decoding allocates nothing per token. A Session is not safe for concurrent
// use.
type Session struct {
	m        *Model
	cache    *kvCache
	maxChunk int
	Hook     Hook
	// torn is set when a forward pass stopped between layers: some layers
	// hold the chunk and others do not, so the cache is unusable until
	// Reset or Restore.
	torn bool

	// scratch, sized for maxChunk tokens
	x, xn, attnOut, tmp []float32
	q, k, v             []float32
	gate, up            []float32
	scores              []float32
	cosL, sinL          []float32 // per chunk position, head_dim/2 each
	cosG, sinG          []float32
	groups              []int32
	lastGroup           int32 // image group of the last token processed, -1 if none
}

// NewSession prepares a sequence of at most capacity tokens, processed in
// chunks of at most maxChunk tokens.
func (m *Model) NewSession(capacity, maxChunk int) (*Session, error) {
	if capacity <= 0 || maxChunk <= 0 {
		return nil, errors.New("capacity and chunk size must be positive")
	}
	if capacity > m.Config.Text.MaxPositionEmbeddings {
		return nil, fmt.Errorf("context of %d tokens is over the model's %d", capacity, m.Config.Text.MaxPositionEmbeddings)
	}
	t := &m.Config.Text
	maxChunk = min(maxChunk, capacity)
	h, qDim, kvDim := t.HiddenSize, t.NumAttentionHeads*t.HeadDim, t.NumKeyValueHeads*t.HeadDim
	half := t.HeadDim / 2
	s := &Session{
		m: m, cache: newKVCache(t, capacity), maxChunk: maxChunk,
		x: make([]float32, maxChunk*h), xn: make([]float32, maxChunk*h),
		attnOut: make([]float32, maxChunk*qDim), tmp: make([]float32, maxChunk*h),
		q: make([]float32, maxChunk*qDim), k: make([]float32, maxChunk*kvDim), v: make([]float32, maxChunk*kvDim),
		gate: make([]float32, maxChunk*t.IntermediateSize), up: make([]float32, maxChunk*t.IntermediateSize),
		cosL: make([]float32, maxChunk*half), sinL: make([]float32, maxChunk*half),
		cosG: make([]float32, maxChunk*half), sinG: make([]float32, maxChunk*half),
		groups:    make([]int32, maxChunk),
		scores:    make([]float32, capacity),
		lastGroup: -1,
	}
	return s, nil
}

// Model is the model the session runs.
func (s *Session) Model() *Model { return s.m }

// Capacity is the most tokens the session holds.
func (s *Session) Capacity() int { return s.cache.capacity }

// Pos is the number of tokens processed so far.
func (s *Session) Pos() int { return s.cache.len }

// KVBytes is the memory its KV cache holds now.
func (s *Session) KVBytes() int64 { return s.cache.bytes() }

// Reset empties the cache for a new sequence (keeping its memory).
func (s *Session) Reset() { s.cache.len, s.lastGroup, s.torn = 0, -1, false }

// Input is a chunk of tokens. Embeds, when set, holds one row of hidden_size
// per token to use instead of the token embedding (image features go there).
// Groups gives each token's image group for bidirectional attention inside an
// image: -1 outside images; tokens of one image share a group and must be in
// the same chunk.
type Input struct {
	IDs    []int32
	Embeds []float32 // optional, len(IDs) x hidden: rows replaced where Replace[i]
	// Replace marks the tokens whose embedding comes from Embeds.
	Replace []bool
	Groups  []int32
}

// Forward runs a chunk through the decoder, appends it to the cache, and
// returns the final-normed hidden states (n x hidden_size), valid until the
// next call. A cancelled ctx stops it before the next layer with ctx's
// error; the session then needs Reset or Restore before it is used again.
func (s *Session) Forward(ctx context.Context, in Input) ([]float32, error) {
	t := &s.m.Config.Text
	n := len(in.IDs)
	switch {
	case s.torn:
		return nil, errors.New("the session's cache was left incomplete by a cancelled forward pass: Reset or Restore it first")
	case n == 0:
		return nil, errors.New("empty chunk")
	case n > s.maxChunk:
		return nil, fmt.Errorf("chunk of %d tokens is over the session's %d", n, s.maxChunk)
	case s.cache.len+n > s.cache.capacity:
		return nil, fmt.Errorf("%d tokens would exceed the context of %d", s.cache.len+n, s.cache.capacity)
	case in.Replace != nil && (len(in.Replace) != n || len(in.Embeds) != n*t.HiddenSize):
		return nil, errors.New("replace must have one entry per token and embeds one row per token")
	case in.Groups != nil && len(in.Groups) != n:
		return nil, errors.New("groups must have one entry per token")
	}
	h := t.HiddenSize
	x := s.x[:n*h]
	if err := s.m.text.embed(x, in.IDs); err != nil {
		return nil, err
	}
	if in.Replace != nil {
		for i, r := range in.Replace {
			if r {
				copy(x[i*h:(i+1)*h], in.Embeds[i*h:(i+1)*h])
			}
		}
	}
	groups := s.groups[:n]
	for i := range groups {
		groups[i] = -1
		if in.Groups != nil {
			groups[i] = in.Groups[i]
		}
	}
	if groups[0] >= 0 && groups[0] == s.lastGroup {
		return nil, fmt.Errorf("image group %d continues from the previous chunk: an image's tokens must be in one chunk (they attend to each other both ways)", groups[0])
	}
	s.hook("inputs_embeds", x, n)

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pos0 := s.cache.len
	half := t.HeadDim / 2
	for i := range n {
		s.m.text.ropeLocal.table(s.cosL[i*half:(i+1)*half], s.sinL[i*half:(i+1)*half], pos0+i)
		s.m.text.ropeGlobal.table(s.cosG[i*half:(i+1)*half], s.sinG[i*half:(i+1)*half], pos0+i)
	}
	for li := range s.m.text.layers {
		if li > 0 {
			if err := ctx.Err(); err != nil {
				s.torn = true
				return nil, err
			}
		}
		s.layer(li, x, n, pos0, groups)
		if s.Hook != nil {
			s.Hook(fmt.Sprintf("layer.%d", li), x, n)
		}
	}
	s.cache.len += n
	s.lastGroup = groups[n-1]
	out := s.xn[:n*h]
	kernels.RMSNorm(out, x, s.m.text.norm, h, float32(t.RMSNormEps))
	s.hook("final_norm", out, n)
	return out, nil
}

func (s *Session) hook(name string, data []float32, n int) {
	if s.Hook != nil {
		s.Hook(name, data, n)
	}
}

// layer runs decoder layer li over the chunk x (n x hidden) in place.
func (s *Session) layer(li int, x []float32, n, pos0 int, groups []int32) {
	m := s.m.text
	t := &m.cfg
	L := &m.layers[li]
	h, hd := t.HiddenSize, t.HeadDim
	nH, nKV := t.NumAttentionHeads, t.NumKeyValueHeads
	qDim, kvDim := nH*hd, nKV*hd
	eps := float32(t.RMSNormEps)

	xn := s.xn[:n*h]
	kernels.RMSNorm(xn, x, L.inputLayernorm, h, eps)
	q, k, v := s.q[:n*qDim], s.k[:n*kvDim], s.v[:n*kvDim]
	s.m.pool.MatMul(q, xn, n, &L.qProj)
	s.m.pool.MatMul(k, xn, n, &L.kProj)
	s.m.pool.MatMul(v, xn, n, &L.vProj)
	kernels.RMSNorm(q, q, L.qNorm, hd, eps)
	kernels.RMSNorm(k, k, L.kNorm, hd, eps)
	cos, sin := s.cosG, s.sinG
	if L.sliding {
		cos, sin = s.cosL, s.sinL
	}
	half := hd / 2
	for i := range n {
		c, sn := cos[i*half:(i+1)*half], sin[i*half:(i+1)*half]
		for hh := range nH {
			applyRope(q[i*qDim+hh*hd:i*qDim+(hh+1)*hd], c, sn)
		}
		for hh := range nKV {
			applyRope(k[i*kvDim+hh*hd:i*kvDim+(hh+1)*hd], c, sn)
		}
	}

	lc := &s.cache.layers[li]
	lc.reserve(pos0+n, s.cache.capacity)
	s.attention(lc, L.sliding, n, pos0, groups)
	lc.store(k, v, pos0, n)

	attn := s.tmp[:n*h]
	s.m.pool.MatMul(attn, s.attnOut[:n*qDim], n, &L.oProj)
	kernels.RMSNorm(attn, attn, L.postAttentionLayernorm, h, eps)
	for i := range x {
		x[i] += attn[i]
	}

	kernels.RMSNorm(xn, x, L.preFeedforwardLayernorm, h, eps)
	inter := t.IntermediateSize
	gate, up := s.gate[:n*inter], s.up[:n*inter]
	s.m.pool.MatMul(gate, xn, n, &L.gateProj)
	s.m.pool.MatMul(up, xn, n, &L.upProj)
	kernels.GELUTanhSlice(gate)
	for i, u := range up {
		gate[i] *= u
	}
	mlp := s.tmp[:n*h]
	s.m.pool.MatMul(mlp, gate, n, &L.downProj)
	kernels.RMSNorm(mlp, mlp, L.postFeedforwardLayernorm, h, eps)
	for i := range x {
		x[i] += mlp[i]
	}
}

// attention computes softmax(q k^T * scaling + mask) v for every query of the
// chunk against the cached positions and the chunk's own keys. The mask is
// as transformers builds it: causal, or open both ways between soft tokens of
// the same image; and on sliding layers, in either case, only keys less than
// sliding_window positions back.
func (s *Session) attention(lc *layerCache, sliding bool, n, pos0 int, groups []int32) {
	if n == 1 || s.m.pool.Threads() == 1 {
		s.attentionRows(lc, sliding, n, pos0, groups, 0, n, s.scores)
		return
	}
	// A prefill chunk: queries split across threads, each with its own
	// scores buffer (decode steps stay serial and allocate nothing).
	s.m.pool.ParallelFor(n, func(lo, hi int) {
		s.attentionRows(lc, sliding, n, pos0, groups, lo, hi, make([]float32, pos0+n))
	})
}

// attentionRows computes the attention of chunk queries lo..hi.
func (s *Session) attentionRows(lc *layerCache, sliding bool, n, pos0 int, groups []int32, lo, hi int, buf []float32) {
	t := &s.m.text.cfg
	hd, nH, nKV := t.HeadDim, t.NumAttentionHeads, t.NumKeyValueHeads
	qDim, kvDim := nH*hd, nKV*hd
	rep := nH / nKV
	scaling := s.m.text.scaling
	window := t.SlidingWindow
	negInf := float32(math.Inf(-1))
	for i := lo; i < hi; i++ {
		p := pos0 + i
		from := 0
		if sliding {
			from = max(0, p-window+1)
		}
		cachedFrom := min(from, pos0)
		for hh := range nH {
			g := hh / rep
			qv := s.q[i*qDim+hh*hd : i*qDim+(hh+1)*hd]
			scores := buf[:0]
			// Cached positions.
			for cp := cachedFrom; cp < pos0; cp++ {
				sl := lc.slot(cp) * kvDim
				scores = append(scores, kernels.Dot(qv, lc.k[sl+g*hd:sl+(g+1)*hd])*scaling)
			}
			// The chunk.
			for j := range n {
				kp := pos0 + j
				sameImage := groups[i] >= 0 && groups[i] == groups[j]
				if !((j <= i || sameImage) && kp >= from) {
					scores = append(scores, negInf)
					continue
				}
				scores = append(scores, kernels.Dot(qv, s.k[j*kvDim+g*hd:j*kvDim+(g+1)*hd])*scaling)
			}
			kernels.Softmax(scores)
			out := s.attnOut[i*qDim+hh*hd : i*qDim+(hh+1)*hd]
			clear(out)
			nc := pos0 - cachedFrom
			for ci, w := range scores[:nc] {
				sl := lc.slot(cachedFrom+ci) * kvDim
				kernels.Axpy(w, lc.v[sl+g*hd:sl+(g+1)*hd], out)
			}
			for j, w := range scores[nc:] {
				if w == 0 {
					continue
				}
				kernels.Axpy(w, s.v[j*kvDim+g*hd:j*kvDim+(g+1)*hd], out)
			}
		}
	}
}

// Logits computes the logits of one hidden state (len hidden_size) into out
// (len vocab_size).
func (s *Session) Logits(out, hidden []float32) { s.LogitsRows(out, hidden, 1) }

// LogitsRows computes the logits of n hidden states (n x hidden_size) into
// out (n x vocab_size) with one pass over the LM head.
func (s *Session) LogitsRows(out, hidden []float32, n int) {
	v := s.m.Config.Text.VocabSize
	s.m.pool.MatMul(out[:n*v], hidden[:n*s.m.Config.Text.HiddenSize], n, &s.m.text.lmHead)
	if c := s.m.Config.Text.FinalLogitSoftcapping; c > 0 {
		for i, x := range out[:n*v] {
			out[i] = float32(math.Tanh(float64(x)/c) * c)
		}
	}
}
