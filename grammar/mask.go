package grammar

import (
	bits64 "math/bits"
	"sync"
	"sync/atomic"
)

// A frameMask is what one top frame (an automaton state) allows whatever
// the stack below it: the tokens it consumes entirely inside its rule
// (accepted, as ids or as a bitset when many), and the trie nodes after
// which its rule may end with bytes of the token left over (points), whose
// subtrees only the real caller can settle.
type frameMask struct {
	ids    []int32
	bits   []uint64
	points []int32
}

// maskCache holds each state's frameMask per vocabulary, computed on first
// use; concurrent matchers may race to compute one, and both compute the
// same. It keeps at most MaxMaskCache bytes per grammar (a long string's
// every length is a state of its own, each a bitset of the vocabulary);
// past that, masks are computed where used and not kept.
type maskCache struct {
	states  int
	mu      sync.Mutex
	byVocab map[*Vocab][]atomic.Pointer[frameMask]
	bytes   atomic.Int64
	limit   int64 // MaxMaskCache
}

// MaxMaskCache bounds the bytes of masks one compiled grammar keeps.
const MaxMaskCache = 8 << 20

func (fm *frameMask) size() int64 {
	return int64(8*len(fm.bits) + 4*len(fm.ids) + 4*len(fm.points) + 80)
}

func (mc *maskCache) init(states int) { mc.states, mc.limit = states, MaxMaskCache }

func (mc *maskCache) table(v *Vocab) []atomic.Pointer[frameMask] {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.byVocab == nil {
		mc.byVocab = map[*Vocab][]atomic.Pointer[frameMask]{}
	}
	t, ok := mc.byVocab[v]
	if !ok {
		t = make([]atomic.Pointer[frameMask], mc.states)
		mc.byVocab[v] = t
	}
	return t
}

// frameMask computes state's frameMask over v: a walk of the trie from
// the state alone, above a bottom frame that stands for any caller, within
// *budget steps (what it takes is taken off).
func (c *Compiled) frameMask(v *Vocab, st int32, budget *int) (*frameMask, error) {
	bottom := &node{state: -1}
	k := newCloser(c, bottom)
	k.budget = *budget
	defer func() { *budget = k.budget }()
	pops := func(set []config) bool {
		for _, x := range set {
			if x.parent == bottom && c.states[x.state].accept {
				return true
			}
		}
		return false
	}
	sets := make([][]config, v.depth+1)
	sets[0], _ = k.close(nil, []config{{st, bottom}})
	fm := &frameMask{}
	bits, count := make([]uint64, v.MaskWords()), 0
	if pops(sets[0]) {
		fm.points = append(fm.points, 0)
	}
	for i := int32(1); i < int32(len(v.nodes)); {
		nd := &v.nodes[i]
		d := nd.depth
		if prev := sets[d-1]; len(prev) == 1 && k.budget > 0 {
			// One config that moves without calls or returns: a step is
			// one edge (most of a walk inside strings and literals).
			x := prev[0]
			t := c.states[x.state].next(nd.b)
			if t < 0 {
				i = nd.end
				continue
			}
			if s := &c.states[t]; len(s.calls) == 0 && (!s.accept || x.parent == bottom) {
				k.budget--
				sets[d] = append(sets[d][:0], config{t, x.parent})
				goto stepped
			}
		}
		{
			var ok bool
			sets[d], ok = k.step(sets[d][:0], sets[d-1], nd.b)
			if !ok {
				return nil, errTooCostly()
			}
			if len(sets[d]) == 0 {
				i = nd.end
				continue
			}
		}
	stepped:
		for _, id := range v.ids[nd.first : nd.first+nd.n] {
			bits[id/64] |= 1 << (id % 64)
		}
		count += int(nd.n)
		if nd.end > i+1 && pops(sets[d]) {
			fm.points = append(fm.points, i)
		}
		i++
	}
	if count > v.size/64 {
		fm.bits = bits
		return fm, nil
	}
	fm.ids = make([]int32, 0, count)
	for w, word := range bits {
		for ; word != 0; word &= word - 1 {
			fm.ids = append(fm.ids, int32(64*w+bits64.TrailingZeros64(word)))
		}
	}
	return fm, nil
}

// Mask sets dst (v.MaskWords() words) to the tokens of v the grammar
// allows next: bit id%64 of word id/64. Whether the generation may end
// instead is Done's. It fails (ErrGrammar) only past the limits on work
// (MaxMaskWork, MaxConfigs).
func (m *Matcher) Mask(v *Vocab, dst []uint64) error {
	clear(dst)
	m.k.budget = MaxMaskWork
	tab := m.c.masks.table(v)
	if len(m.sets) < v.depth+1 {
		m.sets = make([][]config, v.depth+1)
	}
	for i, x := range m.cur {
		fm := tab[x.state].Load()
		if fm == nil {
			var err error
			if fm, err = m.c.frameMask(v, x.state, &m.k.budget); err != nil {
				return err
			}
			if n := fm.size(); m.c.masks.bytes.Add(n) <= m.c.masks.limit {
				if !tab[x.state].CompareAndSwap(nil, fm) {
					fm = tab[x.state].Load()
				}
			} else {
				m.c.masks.bytes.Add(-n)
			}
		}
		first := true
		for _, y := range m.cur[:i] {
			first = first && y.state != x.state
		}
		if first {
			if fm.bits != nil {
				for w, b := range fm.bits {
					dst[w] |= b
				}
			}
			for _, id := range fm.ids {
				dst[id/64] |= 1 << (id % 64)
			}
		}
		if len(fm.points) == 0 || x.parent == nil {
			continue // the root ending: nothing may follow
		}
		// The rule returns to its caller, which reads the rest.
		cont, ok := m.k.close(m.sets[0][:0], []config{{x.parent.state, x.parent.parent}})
		m.sets[0] = cont
		if !ok {
			return errTooCostly()
		}
		for _, p := range fm.points {
			if !m.walk(v, p, cont, dst) {
				return errTooCostly()
			}
		}
	}
	return nil
}

// walk marks in dst the tokens below trie node p that the closed set
// from, standing at p, reads to their end; false past the limits.
func (m *Matcher) walk(v *Vocab, p int32, from []config, dst []uint64) bool {
	base := v.nodes[p].depth
	sets := m.sets
	for i := p + 1; i < v.nodes[p].end; {
		nd := &v.nodes[i]
		d := nd.depth - base
		prev := from
		if d > 1 {
			prev = sets[d-1]
		}
		var ok bool
		sets[d], ok = m.k.step(sets[d][:0], prev, nd.b)
		if !ok {
			return false
		}
		if len(sets[d]) == 0 {
			i = nd.end
			continue
		}
		for _, id := range v.ids[nd.first : nd.first+nd.n] {
			dst[id/64] |= 1 << (id % 64)
		}
		i++
	}
	return true
}
