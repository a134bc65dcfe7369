package model

import (
	"errors"
	"fmt"

	"github.com/medgemma/medgemma/kernels"
)

// DefaultBlockSize is the tokens per KV block unless a pool is told
// otherwise.
const DefaultBlockSize = 16

// ErrKVFull is returned when a pool has no block left for a sequence (a
// scheduler preempts a sequence and tries again).
var ErrKVFull = errors.New("the KV cache has no free block")

// KVPool is the KV cache of any number of sequences, in blocks of
// BlockSize positions (as vLLM's paged attention keeps it): each sequence
// holds a table of blocks (SeqKV), so memory goes to the positions that
// exist, sequences share the blocks of a common prefix, and a finished
// sequence's blocks stay cached, keyed by the hash of every token up to
// their end, until the least recently used are taken for new ones.
//
// Gemma 3 has two kinds of layers, so a pool has two parts: blocks of the
// full-attention layers, kept for every position, and blocks of the
// sliding-window layers, which a sequence gives back once they fall wholly
// out of the window. A block of a part holds its BlockSize positions for
// every layer of that part. Keys and values are stored in the model's KV
// type (LoadOptions.KVType: float32, float16 or Q8_0 blocks). A pool is
// used by one goroutine at a time.
type KVPool struct {
	m         *Model
	typ       kernels.DType
	blockSize int
	window    int
	parts     [2]*kvPart // full, sliding (nil when no layer slides)
	partOf    []int8     // per decoder layer: 0 full, 1 sliding
	indexIn   []int      // per decoder layer: its index within its part
}

// kvPart is one part's block storage, reference counts and prefix cache.
type kvPart struct {
	layers     int
	kvDim      int
	typ        kernels.DType
	rowBytes   int // one position's key (or value) of one layer, stored
	blockSize  int
	maxBlocks  int
	slabBlocks int
	k, v       [][][]byte // [layer][slab]: slabBlocks x blockSize x rowBytes
	n          int        // blocks with storage
	ref        []int32
	hashed     []bool
	hash       [][32]byte
	prev, next []int32 // LRU list of cached blocks (ref 0, hashed); head least recent
	head, tail int32
	free       []int32 // storage allocated, ref 0, not hashed
	byHash     map[[32]byte]int32
	cached     int // blocks in the LRU list
}

// PoolOptions size a pool.
type PoolOptions struct {
	// BlockSize is the positions per block (0: DefaultBlockSize).
	BlockSize int
	// FullBlocks and SlidingBlocks bound each part's blocks; storage is
	// allocated as blocks are first needed, in slabs.
	FullBlocks, SlidingBlocks int
}

// NewKVPool makes an empty pool for the model.
func (m *Model) NewKVPool(o PoolOptions) (*KVPool, error) {
	t := &m.Config.Text
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.BlockSize < 1 || o.BlockSize > 1024 {
		return nil, fmt.Errorf("block size %d is outside 1..1024", o.BlockSize)
	}
	kvDim := t.NumKeyValueHeads * t.HeadDim
	if m.kvType == kernels.Q8_0 && t.HeadDim%kernels.QK8_0 != 0 {
		return nil, fmt.Errorf("a Q8_0 KV cache needs heads of whole blocks of 32; head_dim is %d", t.HeadDim)
	}
	p := &KVPool{m: m, typ: m.kvType, blockSize: o.BlockSize, window: t.SlidingWindow, partOf: make([]int8, t.NumHiddenLayers), indexIn: make([]int, t.NumHiddenLayers)}
	var counts [2]int
	for i := range t.NumHiddenLayers {
		kind := int8(0)
		if t.Sliding(i) {
			kind = 1
		}
		p.partOf[i], p.indexIn[i] = kind, counts[kind]
		counts[kind]++
	}
	for kind, max := range [2]int{o.FullBlocks, o.SlidingBlocks} {
		if counts[kind] == 0 {
			continue
		}
		if max < 2 {
			return nil, fmt.Errorf("a KV pool part of %d blocks; want at least 2", max)
		}
		p.parts[kind] = newPart(counts[kind], kvDim, m.kvType, o.BlockSize, max)
	}
	return p, nil
}

func newPart(layers, kvDim int, typ kernels.DType, blockSize, maxBlocks int) *kvPart {
	rowBytes := kernels.RowBytes(typ, kvDim)
	slab := max(1, min(64, (4<<20)/(blockSize*rowBytes))) // slabs of about 4 MB per layer
	return &kvPart{layers: layers, kvDim: kvDim, typ: typ, rowBytes: rowBytes, blockSize: blockSize, maxBlocks: maxBlocks, slabBlocks: slab,
		k: make([][][]byte, layers), v: make([][][]byte, layers), head: -1, tail: -1, byHash: map[[32]byte]int32{}}
}

// BlockSize is the positions per block.
func (p *KVPool) BlockSize() int { return p.blockSize }

// BytesPerToken is the KV memory of one position: every layer's key and
// value, in the pool's type.
func (p *KVPool) BytesPerToken() int64 {
	return int64(p.m.Config.Text.NumHiddenLayers) * p.m.KVBytesPerPosition()
}

// KVBytesPerPosition is one layer's key and value of one position in the
// model's KV type.
func (m *Model) KVBytesPerPosition() int64 {
	t := m.Config.Text
	return 2 * int64(kernels.RowBytes(m.kvType, t.NumKeyValueHeads*t.HeadDim))
}

// Type is the pool's KV type.
func (p *KVPool) Type() kernels.DType { return p.typ }

// PoolStats counts blocks by state, per part.
type PoolStats struct {
	Full, Sliding PartStats
	// Bytes is the storage allocated.
	Bytes int64
}

// PartStats counts one part's blocks.
type PartStats struct {
	InUse, Cached, Free, Max int
}

// Stats reports the pool's blocks.
func (p *KVPool) Stats() PoolStats {
	var st PoolStats
	for kind, part := range p.parts {
		if part == nil {
			continue
		}
		ps := PartStats{Cached: part.cached, Free: len(part.free) + part.maxBlocks - part.n, Max: part.maxBlocks}
		ps.InUse = part.n - part.cached - len(part.free)
		if kind == 0 {
			st.Full = ps
		} else {
			st.Sliding = ps
		}
		slabs := (part.n + part.slabBlocks - 1) / part.slabBlocks
		st.Bytes += int64(slabs) * int64(part.slabBlocks*part.blockSize*part.rowBytes) * 2 * int64(part.layers)
	}
	return st
}

// rows returns the key and value storage of layer li (within the part) for
// block b: blockSize x rowBytes each.
func (pt *kvPart) rows(li int, b int32) (k, v []byte) {
	slab, i := int(b)/pt.slabBlocks, int(b)%pt.slabBlocks
	n := pt.blockSize * pt.rowBytes
	return pt.k[li][slab][i*n : (i+1)*n], pt.v[li][slab][i*n : (i+1)*n]
}

// alloc takes a block: a free one, new storage, or the least recently used
// cached one (forgetting its hash).
func (pt *kvPart) alloc() (int32, bool) {
	var b int32
	switch {
	case len(pt.free) > 0:
		b = pt.free[len(pt.free)-1]
		pt.free = pt.free[:len(pt.free)-1]
	case pt.n < pt.maxBlocks:
		if pt.n%pt.slabBlocks == 0 {
			size := pt.slabBlocks * pt.blockSize * pt.rowBytes
			for li := range pt.layers {
				pt.k[li] = append(pt.k[li], make([]byte, size))
				pt.v[li] = append(pt.v[li], make([]byte, size))
			}
		}
		b = int32(pt.n)
		pt.n++
		pt.ref = append(pt.ref, 0)
		pt.hashed = append(pt.hashed, false)
		pt.hash = append(pt.hash, [32]byte{})
		pt.prev = append(pt.prev, -1)
		pt.next = append(pt.next, -1)
	case pt.head >= 0:
		b = pt.head
		pt.unlink(b)
		delete(pt.byHash, pt.hash[b])
		pt.hashed[b] = false
	default:
		return 0, false
	}
	pt.ref[b] = 1
	return b, true
}

// retain adds a reference to a block (taking it out of the LRU list).
func (pt *kvPart) retain(b int32) {
	if pt.ref[b] == 0 && pt.hashed[b] {
		pt.unlink(b)
	}
	pt.ref[b]++
}

// release drops a reference; an unreferenced block is cached when hashed,
// free otherwise.
func (pt *kvPart) release(b int32) {
	pt.ref[b]--
	if pt.ref[b] > 0 {
		return
	}
	if pt.hashed[b] {
		pt.pushTail(b)
		return
	}
	pt.free = append(pt.free, b)
}

// register keys block b by h unless another block already has that key.
func (pt *kvPart) register(b int32, h [32]byte) {
	if _, ok := pt.byHash[h]; ok || pt.hashed[b] {
		return
	}
	pt.byHash[h], pt.hash[b], pt.hashed[b] = b, h, true
}

func (pt *kvPart) unlink(b int32) {
	if p := pt.prev[b]; p >= 0 {
		pt.next[p] = pt.next[b]
	} else {
		pt.head = pt.next[b]
	}
	if n := pt.next[b]; n >= 0 {
		pt.prev[n] = pt.prev[b]
	} else {
		pt.tail = pt.prev[b]
	}
	pt.prev[b], pt.next[b] = -1, -1
	pt.cached--
}

func (pt *kvPart) pushTail(b int32) {
	pt.prev[b], pt.next[b] = pt.tail, -1
	if pt.tail >= 0 {
		pt.next[pt.tail] = b
	} else {
		pt.head = b
	}
	pt.tail = b
	pt.cached++
}

// copyBlock copies the first n positions of block from into block to, in
// every layer of the part.
func (pt *kvPart) copyBlock(to, from int32, n int) {
	for li := range pt.layers {
		tk, tv := pt.rows(li, to)
		fk, fv := pt.rows(li, from)
		copy(tk[:n*pt.rowBytes], fk[:n*pt.rowBytes])
		copy(tv[:n*pt.rowBytes], fv[:n*pt.rowBytes])
	}
}
