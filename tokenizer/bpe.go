package tokenizer

import "unicode/utf8"

// noMerge is the rank of a pair that has no merge.
const noMerge = int32(-1)

// mergeOf returns the rank and result of merging left and right, or noMerge.
func (t *Tokenizer) mergeOf(left, right int32) (rank, id int32) {
	v, ok := t.merges[uint64(uint32(left))<<32|uint64(uint32(right))]
	if !ok {
		return noMerge, 0
	}
	return int32(v >> 32), int32(uint32(v))
}

// symbols appends the initial BPE symbols of word: one per character, or the
// character's <0xNN> byte tokens when the vocabulary lacks it, or <unk>.
// Invalid UTF-8 goes through byte fallback one byte at a time.
func (t *Tokenizer) symbols(dst []int32, word []byte) []int32 {
	lastUnk := false
	for i := 0; i < len(word); {
		_, n := utf8.DecodeRune(word[i:])
		if id, ok := t.vocab[string(word[i:i+n])]; ok {
			dst = append(dst, id)
			lastUnk = false
			i += n
			continue
		}
		fallback := true
		for _, b := range word[i : i+n] {
			if t.byteIDs[b] < 0 {
				fallback = false
			}
		}
		if fallback {
			for _, b := range word[i : i+n] {
				dst = append(dst, t.byteIDs[b])
			}
			lastUnk = false
		} else if t.unkID >= 0 && !(t.fuseUnk && lastUnk) {
			dst = append(dst, t.unkID)
			lastUnk = true
		}
		i += n
	}
	return dst
}

// mergeSmall applies the merges to syms in place and returns the result. It
// rescans for the lowest-ranked pair after each merge, keeping the pair ranks
// in an array: quadratic, and the fastest for the short pieces of ordinary
// text. mergeHeap gives identical results in O(n log n) for long ones.
func (t *Tokenizer) mergeSmall(syms []int32, ranks []int32, ids []int32) []int32 {
	n := len(syms)
	if n < 2 {
		return syms
	}
	ranks, ids = ranks[:n-1], ids[:n-1]
	for i := range n - 1 {
		ranks[i], ids[i] = t.mergeOf(syms[i], syms[i+1])
	}
	for {
		best := -1
		for i, r := range ranks {
			if r != noMerge && (best < 0 || r < ranks[best]) {
				best = i
			}
		}
		if best < 0 {
			return syms
		}
		syms[best] = ids[best]
		copy(syms[best+1:], syms[best+2:])
		syms = syms[:len(syms)-1]
		copy(ranks[best:], ranks[best+1:])
		copy(ids[best:], ids[best+1:])
		ranks, ids = ranks[:len(ranks)-1], ids[:len(ids)-1]
		if best > 0 {
			ranks[best-1], ids[best-1] = t.mergeOf(syms[best-1], syms[best])
		}
		if best < len(ranks) {
			ranks[best], ids[best] = t.mergeOf(syms[best], syms[best+1])
		}
	}
}

// mergeItem is a candidate merge of the symbol at pos with the one after it.
type mergeItem struct {
	rank, pos, id int32
}

func (a mergeItem) less(b mergeItem) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

// mergeHeap applies the merges to syms with a priority queue over (rank,
// position) and a linked list of live symbols; stale queue entries are
// recognized because a symbol only ever grows to the right, so the pair at a
// position changes exactly when its merge result does.
func (t *Tokenizer) mergeHeap(syms []int32) []int32 {
	n := len(syms)
	if n < 2 {
		return syms
	}
	next := make([]int32, n)
	prev := make([]int32, n)
	for i := range n {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	next[n-1] = -1
	var h []mergeItem
	push := func(it mergeItem) {
		h = append(h, it)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if !h[i].less(h[p]) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
	}
	pop := func() mergeItem {
		top := h[0]
		last := len(h) - 1
		h[0] = h[last]
		h = h[:last]
		for i := 0; ; {
			l, r, m := 2*i+1, 2*i+2, i
			if l < len(h) && h[l].less(h[m]) {
				m = l
			}
			if r < len(h) && h[r].less(h[m]) {
				m = r
			}
			if m == i {
				break
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
		return top
	}
	pushPair := func(pos int32) {
		if pos < 0 || next[pos] < 0 {
			return
		}
		if rank, id := t.mergeOf(syms[pos], syms[next[pos]]); rank != noMerge {
			push(mergeItem{rank, pos, id})
		}
	}
	for i := range n - 1 {
		pushPair(int32(i))
	}
	for len(h) > 0 {
		it := pop()
		right := next[it.pos]
		if syms[it.pos] < 0 || right < 0 {
			continue
		}
		if rank, id := t.mergeOf(syms[it.pos], syms[right]); rank != it.rank || id != it.id {
			continue // stale: the pair at this position has changed
		}
		syms[it.pos] = it.id
		syms[right] = -1
		next[it.pos] = next[right]
		if next[right] >= 0 {
			prev[next[right]] = it.pos
		}
		pushPair(prev[it.pos])
		pushPair(it.pos)
	}
	out := syms[:0]
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, syms[i])
	}
	return out
}
