package model

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/medgemma/medgemma/kernels"
)

// Hook, when set on a Workspace (or a Session), receives intermediate
// tensors by name, as transformers would dump them: "inputs_embeds",
// "layer.N" (each decoder layer's output), "final_norm". Each call gets the
// rows of every token of the pass.
type Hook func(name string, data []float32, n int)

// Input is a chunk of one sequence's tokens. Embeds, when set, holds one
// row of hidden_size per token to use instead of the token embedding (image
// features go there). Groups gives each token's image group for
// bidirectional attention inside an image: -1 outside images; tokens of one
// image share a group and must be in the same chunk. ImageKey names each
// group's image (its content and preparation) for prefix caching; without
// it, blocks from the first image on are not shared.
type Input struct {
	IDs    []int32
	Embeds []float32 // optional, len(IDs) x hidden: rows replaced where Replace[i]
	// Replace marks the tokens whose embedding comes from Embeds.
	Replace  []bool
	Groups   []int32
	ImageKey func(group int32) ([32]byte, bool)
}

// Chunk is one sequence's part of a forward pass.
type Chunk struct {
	KV *SeqKV
	In Input
}

// Workspace holds the scratch of forward passes over up to maxTokens tokens
// in all, allocated once so that a decode step allocates nothing. A
// Workspace is used by one pass at a time.
type Workspace struct {
	m         *Model
	maxTokens int
	Hook      Hook

	x, xn, attnOut, tmp []float32
	q, k, v             []float32
	gate, up            []float32
	cosL, sinL          []float32 // per token, head_dim/2 each
	cosG, sinG          []float32
	pos                 []int   // per token: its position in its sequence
	groups              []int32 // per token: its image group, -1 outside images
	chunkOf             []int   // per token: its chunk
	starts              []int   // per chunk: its first token; one more entry, the total
	attn                attentionJob
}

// NewWorkspace prepares scratch for passes of up to maxTokens tokens.
func (m *Model) NewWorkspace(maxTokens int) *Workspace {
	t := &m.Config.Text
	h, qDim, kvDim, half := t.HiddenSize, t.NumAttentionHeads*t.HeadDim, t.NumKeyValueHeads*t.HeadDim, t.HeadDim/2
	ws := &Workspace{m: m, maxTokens: maxTokens,
		x: make([]float32, maxTokens*h), xn: make([]float32, maxTokens*h),
		attnOut: make([]float32, maxTokens*qDim), tmp: make([]float32, maxTokens*h),
		q: make([]float32, maxTokens*qDim), k: make([]float32, maxTokens*kvDim), v: make([]float32, maxTokens*kvDim),
		gate: make([]float32, maxTokens*t.IntermediateSize), up: make([]float32, maxTokens*t.IntermediateSize),
		cosL: make([]float32, maxTokens*half), sinL: make([]float32, maxTokens*half),
		cosG: make([]float32, maxTokens*half), sinG: make([]float32, maxTokens*half),
		pos: make([]int, maxTokens), groups: make([]int32, maxTokens), chunkOf: make([]int, maxTokens),
	}
	ws.attn.ws = ws
	return ws
}

// MaxTokens is the most tokens one pass over this workspace takes.
func (ws *Workspace) MaxTokens() int { return ws.maxTokens }

// Forward runs one pass of the decoder over chunks of several sequences
// (each sequence at most once): every matrix product takes all the tokens
// at once, so each weight is read once for the whole batch, and attention
// runs per sequence over its own blocks. Each chunk's keys and values are
// stored in its sequence's blocks, which the pass takes from the pool
// (ErrKVFull when there are none left: nothing has been computed then). It
// returns the final-normed hidden states of every token (in chunk order,
// hidden_size each), valid until the next pass. A cancelled ctx stops the
// pass between layers with ctx's error; the sequences' lengths are then
// unchanged (positions half written are simply written again).
func (m *Model) Forward(ctx context.Context, ws *Workspace, chunks []Chunk) ([]float32, error) {
	t := &m.Config.Text
	h := t.HiddenSize
	ws.starts = ws.starts[:0]
	total := 0
	for ci := range chunks {
		c := &chunks[ci]
		n := len(c.In.IDs)
		switch {
		case n == 0:
			return nil, errors.New("empty chunk")
		case c.KV == nil || c.KV.pool.m != m:
			return nil, errors.New("a chunk without a sequence of this model's pool")
		case c.In.Groups != nil && len(c.In.Groups) != n:
			return nil, errors.New("groups must have one entry per token")
		case c.In.Replace != nil && (len(c.In.Replace) != n || len(c.In.Embeds) != n*h):
			return nil, errors.New("replace must have one entry per token and embeds one row per token")
		case c.KV.len+n > t.MaxPositionEmbeddings:
			return nil, fmt.Errorf("%d positions would exceed the model's %d", c.KV.len+n, t.MaxPositionEmbeddings)
		case c.In.Groups != nil && c.In.Groups[0] >= 0 && c.In.Groups[0] == c.KV.lastGroup:
			return nil, fmt.Errorf("image group %d continues from the previous chunk: an image's tokens must be in one chunk (they attend to each other both ways)", c.In.Groups[0])
		}
		for cj := range ci {
			if chunks[cj].KV == c.KV {
				return nil, errors.New("a sequence twice in one pass")
			}
		}
		ws.starts = append(ws.starts, total)
		total += n
	}
	ws.starts = append(ws.starts, total)
	if total > ws.maxTokens {
		return nil, fmt.Errorf("%d tokens in one pass; the workspace takes %d", total, ws.maxTokens)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for ci := range chunks {
		if err := chunks[ci].KV.Reserve(len(chunks[ci].In.IDs)); err != nil {
			return nil, err
		}
	}
	// Embeddings, positions, groups, rotary tables.
	x := ws.x[:total*h]
	half := t.HeadDim / 2
	for ci := range chunks {
		c := &chunks[ci]
		s0 := ws.starts[ci]
		rows := x[s0*h : (s0+len(c.In.IDs))*h]
		if err := m.text.embed(rows, c.In.IDs); err != nil {
			return nil, err
		}
		for i := range c.In.IDs {
			tok := s0 + i
			if c.In.Replace != nil && c.In.Replace[i] {
				copy(rows[i*h:(i+1)*h], c.In.Embeds[i*h:(i+1)*h])
			}
			ws.pos[tok], ws.chunkOf[tok], ws.groups[tok] = c.KV.len+i, ci, -1
			if c.In.Groups != nil {
				ws.groups[tok] = c.In.Groups[i]
			}
			m.text.ropeLocal.table(ws.cosL[tok*half:(tok+1)*half], ws.sinL[tok*half:(tok+1)*half], ws.pos[tok])
			m.text.ropeGlobal.table(ws.cosG[tok*half:(tok+1)*half], ws.sinG[tok*half:(tok+1)*half], ws.pos[tok])
		}
	}
	ws.hook("inputs_embeds", x, total)
	for li := range m.text.layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.layer(ws, chunks, li, total)
		if ws.Hook != nil {
			ws.Hook(fmt.Sprintf("layer.%d", li), x, total)
		}
	}
	for ci := range chunks {
		chunks[ci].KV.advance(&chunks[ci].In)
	}
	out := ws.xn[:total*h]
	kernels.RMSNorm(out, x, m.text.norm, h, float32(t.RMSNormEps))
	ws.hook("final_norm", out, total)
	return out, nil
}

func (ws *Workspace) hook(name string, data []float32, n int) {
	if ws.Hook != nil {
		ws.Hook(name, data, n)
	}
}

// layer runs decoder layer li over the pass's total tokens (ws.x) in place.
func (m *Model) layer(ws *Workspace, chunks []Chunk, li, total int) {
	tm := m.text
	t := &tm.cfg
	L := &tm.layers[li]
	h, hd := t.HiddenSize, t.HeadDim
	nH, nKV := t.NumAttentionHeads, t.NumKeyValueHeads
	qDim, kvDim := nH*hd, nKV*hd
	eps := float32(t.RMSNormEps)
	pool := m.pool

	x := ws.x[:total*h]
	xn := ws.xn[:total*h]
	kernels.RMSNorm(xn, x, L.inputLayernorm, h, eps)
	q, k, v := ws.q[:total*qDim], ws.k[:total*kvDim], ws.v[:total*kvDim]
	pool.MatMuls(xn, total, kernels.Product{Out: q, W: &L.qProj}, kernels.Product{Out: k, W: &L.kProj}, kernels.Product{Out: v, W: &L.vProj})
	kernels.RMSNorm(q, q, L.qNorm, hd, eps)
	kernels.RMSNorm(k, k, L.kNorm, hd, eps)
	cos, sin := ws.cosG, ws.sinG
	if L.sliding {
		cos, sin = ws.cosL, ws.sinL
	}
	half := hd / 2
	for i := range total {
		c, sn := cos[i*half:(i+1)*half], sin[i*half:(i+1)*half]
		for hh := range nH {
			applyRope(q[i*qDim+hh*hd:i*qDim+(hh+1)*hd], c, sn)
		}
		for hh := range nKV {
			applyRope(k[i*kvDim+hh*hd:i*kvDim+(hh+1)*hd], c, sn)
		}
	}
	// Keys and values into each sequence's blocks (in the cache's type),
	// then attention over them.
	for ci := range chunks {
		kv := chunks[ci].KV
		s0 := ws.starts[ci]
		for i := range chunks[ci].In.IDs {
			kr, vr := kv.rows(li, ws.pos[s0+i])
			storeRow(kv.pool.typ, kr, k[(s0+i)*kvDim:(s0+i+1)*kvDim])
			storeRow(kv.pool.typ, vr, v[(s0+i)*kvDim:(s0+i+1)*kvDim])
		}
	}
	ws.attn.prepare(chunks, li, L.sliding)
	pool.Run(len(ws.attn.blocks), 1, &ws.attn)

	attn := ws.tmp[:total*h]
	pool.MatMul(attn, ws.attnOut[:total*qDim], total, &L.oProj)
	kernels.RMSNorm(attn, attn, L.postAttentionLayernorm, h, eps)
	for i := range x {
		x[i] += attn[i]
	}

	kernels.RMSNorm(xn, x, L.preFeedforwardLayernorm, h, eps)
	inter := t.IntermediateSize
	gate, up := ws.gate[:total*inter], ws.up[:total*inter]
	pool.MatMuls(xn, total, kernels.Product{Out: gate, W: &L.gateProj}, kernels.Product{Out: up, W: &L.upProj})
	kernels.GELUTanhSlice(gate)
	for i, u := range up {
		gate[i] *= u
	}
	mlp := ws.tmp[:total*h]
	pool.MatMul(mlp, gate, total, &L.downProj)
	kernels.RMSNorm(mlp, mlp, L.postFeedforwardLayernorm, h, eps)
	for i := range x {
		x[i] += mlp[i]
	}
}

// rows returns where layer li keeps position pos's key and value (stored
// in the pool's type).
func (s *SeqKV) rows(li, pos int) (k, v []byte) {
	p := s.pool
	pt := p.parts[p.partOf[li]]
	b := s.table[p.partOf[li]][pos/p.blockSize]
	kb, vb := pt.rows(p.indexIn[li], b)
	off := (pos % p.blockSize) * pt.rowBytes
	return kb[off : off+pt.rowBytes], vb[off : off+pt.rowBytes]
}

// storeRow writes a key or value row into the cache's storage: float32 as
// it is, float16 rounded to nearest, Q8_0 as ggml's quantizer makes it.
func storeRow(typ kernels.DType, dst []byte, src []float32) {
	switch typ {
	case kernels.F32:
		copy(f32View(dst), src)
	case kernels.F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], kernels.F32ToF16(v))
		}
	case kernels.Q8_0:
		kernels.QuantizeQ8_0(dst, src)
	}
}

// f32View is a float32 cache row's bytes as float32 (the pool's slabs are
// allocated whole, rows at multiples of four bytes).
func f32View(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

// attentionJob computes softmax(q k^T * scaling + mask) v for the pass's
// queries, split across threads: each query against its own sequence's
// positions. The mask is transformers 5's: causal, or open both ways between
// soft tokens of the same image; on sliding layers, in either case, only
// keys less than sliding_window positions back. Queries go in blocks of up
// to attnBlock consecutive ones of a chunk, each key and value row used by
// the whole block in turn (4B Q4_K_M, prefill 512, interleaved 3 rounds:
// 47.3-49.0 tok/s with blocks of one query, 49.4-50.9 with blocks of 8);
// the blocks are dealt first, last, second, second-to-last... (dealt) so
// that the threads' contiguous shares hold as many long causal rows as
// short ones (in order, the second half of a prompt is three quarters of
// its attention).
type attentionJob struct {
	ws      *Workspace
	chunks  []Chunk
	li      int
	sliding bool
	blocks  [][2]int32                   // query ranges, in order
	scores  [kernels.MaxShares][]float32 // per share, grown to the longest context
	// With a float16 or Q8_0 cache, each chunk's keys and values of the
	// layer widened to float32 once (views), into widened.
	views   []kvView
	widened []float32
}

// kvView is a chunk's keys and values from position base on, widened.
type kvView struct {
	base int
	k, v []float32
}

// attnBlock is how many consecutive queries of a chunk share each pass over
// the keys and values; attnScores bounds their scores (floats, per
// thread): a block whose queries' scores would take more goes a part at a
// time, down to one query (a 27B query at 128K positions has 4M).
const attnBlock = 8

var attnScores = 1 << 20 // a variable for the tests

// prepare sets the job for layer li: the query blocks, and with a float16
// or Q8_0 cache, per chunk, the positions its queries attend to widened.
func (j *attentionJob) prepare(chunks []Chunk, li int, sliding bool) {
	j.chunks, j.li, j.sliding = chunks, li, sliding
	j.views = j.views[:0]
	ws := j.ws
	j.blocks = j.blocks[:0]
	for ci := range chunks {
		for s := ws.starts[ci]; s < ws.starts[ci+1]; s += attnBlock {
			j.blocks = append(j.blocks, [2]int32{int32(s), int32(min(s+attnBlock, ws.starts[ci+1]))})
		}
	}
	typ := ws.m.kvType
	if typ == kernels.F32 {
		return
	}
	t := &ws.m.Config.Text
	kvDim := t.NumKeyValueHeads * t.HeadDim
	need := 0
	for ci := range chunks {
		lo, hi := j.span(ci)
		need += 2 * (hi - lo + 1) * kvDim
	}
	if cap(j.widened) < need {
		j.widened = make([]float32, need+need/2)
	}
	off := 0
	for ci := range chunks {
		lo, hi := j.span(ci)
		n := (hi - lo + 1) * kvDim
		view := kvView{base: lo, k: j.widened[off : off+n], v: j.widened[off+n : off+2*n]}
		off += 2 * n
		for p := lo; p <= hi; p++ {
			kr, vr := chunks[ci].KV.rows(li, p)
			kernels.WidenRow(typ, view.k[(p-lo)*kvDim:(p-lo+1)*kvDim], kr)
			kernels.WidenRow(typ, view.v[(p-lo)*kvDim:(p-lo+1)*kvDim], vr)
		}
		j.views = append(j.views, view)
	}
}

// span is the positions chunk ci's queries attend to in this layer: from
// the first query's window (or 0) to the chunk's last position.
func (j *attentionJob) span(ci int) (lo, hi int) {
	ws := j.ws
	first, last := ws.pos[ws.starts[ci]], ws.pos[ws.starts[ci+1]-1]
	if j.sliding {
		return max(0, first-ws.m.Config.Text.SlidingWindow+1), last
	}
	return 0, last
}

// key and value are the float32 key and value rows of position pos for
// chunk ci: the cache's own row, or the widened one.
func (j *attentionJob) key(ci, pos, kvDim int) []float32 {
	if len(j.views) > 0 {
		v := &j.views[ci]
		return v.k[(pos-v.base)*kvDim : (pos-v.base+1)*kvDim]
	}
	kr, _ := j.chunks[ci].KV.rows(j.li, pos)
	return f32View(kr)
}

func (j *attentionJob) value(ci, pos, kvDim int) []float32 {
	if len(j.views) > 0 {
		v := &j.views[ci]
		return v.v[(pos-v.base)*kvDim : (pos-v.base+1)*kvDim]
	}
	_, vr := j.chunks[ci].KV.rows(j.li, pos)
	return f32View(vr)
}

// attnQuery is one query of a block: its index, the positions it attends
// to (from..last), and where its scores start in the block's buffer.
type attnQuery struct {
	i, from, last, n, off int
}

// dealt is the block dealt k-th of nb: first, last, second, second-to-last...
func dealt(k, nb int) int {
	if k%2 == 0 {
		return k / 2
	}
	return nb - 1 - k/2
}

// Do computes the attention of the pass's query blocks dealt lo..hi. Each
// query's dot products, softmax and sum over the values are what they would
// be alone, in the same order.
func (j *attentionJob) Do(share, lo, hi int) {
	for k := lo; k < hi; k++ {
		blk := j.blocks[dealt(k, len(j.blocks))]
		for i0, i1 := int(blk[0]), int(blk[1]); i0 < i1; {
			i0 = j.block(share, i0, i1)
		}
	}
}

// block computes the attention of queries i0.. of one chunk, as many
// before i1 as attnScores allows (one at least), and returns where it
// stopped.
func (j *attentionJob) block(share, i0, i1 int) int {
	ws := j.ws
	m := ws.m
	t := &m.text.cfg
	hd, nH, nKV := t.HeadDim, t.NumAttentionHeads, t.NumKeyValueHeads
	qDim := nH * hd
	rep := nH / nKV
	scaling := m.text.scaling
	window := t.SlidingWindow
	var qs [attnBlock]attnQuery
	ci := ws.chunkOf[i0]
	size, nq := 0, 0
	first, end := math.MaxInt, 0
	for i := i0; i < i1; i++ {
		p := ws.pos[i]
		from, last := 0, p
		if j.sliding {
			from = max(0, p-window+1)
		}
		// Inside an image, the keys go on to the image's end (in this
		// chunk): the image's tokens see each other both ways.
		if g := ws.groups[i]; g >= 0 {
			for e := i + 1; e < ws.starts[ci+1] && ws.groups[e] == g; e++ {
				last = ws.pos[e]
			}
		}
		n := last - from + 1
		if nq > 0 && size+nH*n > attnScores {
			break
		}
		qs[nq] = attnQuery{i: i, from: from, last: last, n: n, off: size}
		nq++
		size += nH * n
		first, end = min(first, from), max(end, last+1)
	}
	block := qs[:nq]
	if cap(j.scores[share]) < size {
		j.scores[share] = make([]float32, 2*size)
	}
	buf := j.scores[share][:size]
	for kp := first; kp < end; kp++ {
		kr := j.key(ci, kp, nKV*hd)
		for _, a := range block {
			if kp < a.from || kp > a.last {
				continue
			}
			q := ws.q[a.i*qDim : (a.i+1)*qDim]
			for hh := range nH {
				g := hh / rep
				buf[a.off+hh*a.n+kp-a.from] = kernels.Dot(q[hh*hd:(hh+1)*hd], kr[g*hd:(g+1)*hd]) * scaling
			}
		}
	}
	for _, a := range block {
		clear(ws.attnOut[a.i*qDim : (a.i+1)*qDim])
		for hh := range nH {
			kernels.Softmax(buf[a.off+hh*a.n : a.off+(hh+1)*a.n])
		}
	}
	for kp := first; kp < end; kp++ {
		vr := j.value(ci, kp, nKV*hd)
		for _, a := range block {
			if kp < a.from || kp > a.last {
				continue
			}
			out := ws.attnOut[a.i*qDim : (a.i+1)*qDim]
			for hh := range nH {
				if w := buf[a.off+hh*a.n+kp-a.from]; w != 0 {
					g := hh / rep
					kernels.Axpy(w, vr[g*hd:(g+1)*hd], out[hh*hd:(hh+1)*hd])
				}
			}
		}
	}
	return i0 + nq
}
