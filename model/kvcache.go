package model

// layerCache holds the keys (after RoPE) and values of one layer. Full
// attention layers keep every position; sliding layers keep a ring of
// sliding_window slots, so their memory stays bounded however long the
// context grows.
type layerCache struct {
	sliding bool
	window  int
	kvDim   int
	k, v    []float32 // slot-major: slot*kvDim
}

// kvCache is the cache of every decoder layer of one sequence. Only its
// session changes it (Forward, Reset, Restore).
type kvCache struct {
	layers []layerCache
	// len is the number of positions written.
	len int
	// capacity is the most positions the full-attention layers may hold.
	capacity int
}

func newKVCache(cfg *TextConfig, capacity int) *kvCache {
	c := &kvCache{capacity: capacity}
	kvDim := cfg.NumKeyValueHeads * cfg.HeadDim
	for i := range cfg.NumHiddenLayers {
		l := layerCache{sliding: cfg.Sliding(i), window: cfg.SlidingWindow, kvDim: kvDim}
		if l.sliding {
			slots := min(cfg.SlidingWindow, capacity)
			l.k = make([]float32, slots*kvDim)
			l.v = make([]float32, slots*kvDim)
		}
		c.layers = append(c.layers, l)
	}
	return c
}

// slots is the number of positions a layer's storage holds now.
func (l *layerCache) slots() int { return len(l.k) / l.kvDim }

// slot maps a position to its storage slot.
func (l *layerCache) slot(pos int) int {
	if l.sliding {
		return pos % l.slots()
	}
	return pos
}

// reserve makes room for positions below end (full-attention layers grow by
// doubling up to the capacity, so a short chat does not pay for 128K).
func (l *layerCache) reserve(end, capacity int) {
	if l.sliding || end <= l.slots() {
		return
	}
	n := max(end, min(2*l.slots(), capacity), 256)
	n = min(n, capacity)
	k := make([]float32, n*l.kvDim)
	v := make([]float32, n*l.kvDim)
	copy(k, l.k)
	copy(v, l.v)
	l.k, l.v = k, v
}

// store writes the keys and values of n consecutive positions from pos.
func (l *layerCache) store(k, v []float32, pos, n int) {
	for i := range n {
		s := l.slot(pos+i) * l.kvDim
		copy(l.k[s:s+l.kvDim], k[i*l.kvDim:(i+1)*l.kvDim])
		copy(l.v[s:s+l.kvDim], v[i*l.kvDim:(i+1)*l.kvDim])
	}
}

// bytes is the memory the cache holds now.
func (c *kvCache) bytes() int64 {
	var n int64
	for i := range c.layers {
		n += int64(len(c.layers[i].k)+len(c.layers[i].v)) * 4
	}
	return n
}

// Snapshot is a copy of a session's cache state that Restore returns to: the
// sliding layers' rings (which later tokens overwrite) and the length. The
// full-attention layers need no copy: positions past the length are simply
// written again.
type Snapshot struct {
	n         int
	lastGroup int32
	torn      bool
	rings     [][2][]float32
}

// Snapshot captures the cache as it is now.
func (s *Session) Snapshot() *Snapshot {
	snap := &Snapshot{n: s.cache.len, lastGroup: s.lastGroup, torn: s.torn}
	for i := range s.cache.layers {
		l := &s.cache.layers[i]
		if l.sliding {
			snap.rings = append(snap.rings, [2][]float32{append([]float32(nil), l.k...), append([]float32(nil), l.v...)})
		} else {
			snap.rings = append(snap.rings, [2][]float32{})
		}
	}
	return snap
}

// Restore returns the cache to a snapshot taken from this session, whose
// positions below the snapshot's length have not been written again since
// (going back to an earlier point and on is fine; forward to a later
// snapshot over rewritten positions is not).
func (s *Session) Restore(snap *Snapshot) {
	for i := range s.cache.layers {
		l := &s.cache.layers[i]
		if l.sliding {
			copy(l.k, snap.rings[i][0])
			copy(l.v, snap.rings[i][1])
		}
	}
	s.cache.len, s.lastGroup, s.torn = snap.n, snap.lastGroup, snap.torn
}
