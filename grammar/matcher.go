package grammar

// A stack of frames is a chain of interned nodes: equal stacks are one
// pointer, so sets of stacks compare and deduplicate cheaply. A config is
// a stack whose top frame is held by value (it changes with every byte)
// above an interned parent.
type node struct {
	state  int32
	parent *node
	depth  int32
}

type nodeKey struct {
	state  int32
	parent *node
}

type config struct {
	state  int32
	parent *node
}

// Limits on a match: configurations alive at once (an ambiguous grammar
// can multiply them), frames deep (nesting), and the steps one mask (or
// one advance) may take, the masks it computes for the first time
// included: a JSON string's takes about 600,000 on Gemma's vocabulary
// (about 10 ms), so the limit (about a quarter of a second) passes any
// sane grammar and bounds what a hostile one holds up a batch for.
const (
	MaxConfigs  = 4096
	MaxDepth    = 1 << 16
	MaxMaskWork = 1 << 24
)

// errTooCostly is the error of a match past a limit.
func errTooCostly() error {
	return grammarError("matching needs more than %d configurations at once or %d steps for one token (the grammar is too ambiguous)", MaxConfigs, MaxMaskWork)
}

// closer computes closures: from a configuration, every one reachable
// without reading a byte (entering called rules, returning from rules that
// may end). It interns the frames it pushes. bottom, when set, stands for
// an unknown caller: a config may end there but never returns into it.
type closer struct {
	c      *Compiled
	nodes  map[nodeKey]*node
	bottom *node
	work   []config
	raw    []config
	budget int // steps left before the caller gives up (MaxMaskWork)
	over   bool
}

func newCloser(c *Compiled, bottom *node) *closer {
	return &closer{c: c, nodes: map[nodeKey]*node{}, bottom: bottom, budget: MaxMaskWork}
}

func (k *closer) intern(state int32, parent *node) *node {
	key := nodeKey{state, parent}
	if n, ok := k.nodes[key]; ok {
		return n
	}
	n := &node{state: state, parent: parent}
	if parent != nil {
		n.depth = parent.depth + 1
	}
	k.nodes[key] = n
	return n
}

// close appends to dst (a closed set, or empty) the closure of raw, and
// reports false when the set would pass MaxConfigs or the work its
// budget.
func (k *closer) close(dst, raw []config) ([]config, bool) {
	k.work = append(k.work[:0], raw...)
	for len(k.work) > 0 {
		if k.budget--; k.budget < 0 {
			k.over = true
			return dst, false
		}
		x := k.work[len(k.work)-1]
		k.work = k.work[:len(k.work)-1]
		if contains(dst, x) {
			continue
		}
		if len(dst) >= MaxConfigs {
			return dst, false
		}
		dst = append(dst, x)
		s := &k.c.states[x.state]
		if s.accept && x.parent != nil && x.parent != k.bottom {
			k.work = append(k.work, config{x.parent.state, x.parent.parent})
		}
		if len(s.calls) > 0 && (x.parent == nil || x.parent.depth < MaxDepth) {
			for _, c := range s.calls {
				k.work = append(k.work, config{k.c.start[c.rule], k.intern(c.ret, x.parent)})
			}
		}
	}
	return dst, true
}

func contains(set []config, x config) bool {
	for _, y := range set {
		if y == x {
			return true
		}
	}
	return false
}

// step appends to dst the closed set after byte b from the closed set src.
func (k *closer) step(dst, src []config, b byte) ([]config, bool) {
	k.raw = k.raw[:0]
	if k.budget -= len(src); k.budget < 0 {
		k.over = true
		return dst, false
	}
	for _, x := range src {
		if t := k.c.states[x.state].next(b); t >= 0 {
			if y := (config{t, x.parent}); !contains(k.raw, y) {
				k.raw = append(k.raw, y)
			}
		}
	}
	if len(k.raw) == 0 {
		return dst, true
	}
	// A config that neither calls nor returns is its own closure (the
	// common case: inside a string, a number, a literal).
	simple := true
	for _, x := range k.raw {
		s := &k.c.states[x.state]
		if len(s.calls) > 0 || s.accept && x.parent != nil && x.parent != k.bottom {
			simple = false
			break
		}
	}
	if simple && len(dst) == 0 {
		if len(k.raw) > MaxConfigs {
			k.over = true
			return dst, false
		}
		return append(dst, k.raw...), true // distinct already
	}
	return k.close(dst, k.raw)
}

// A Matcher follows one generation through a compiled grammar: the bytes
// accepted so far, and what may come next. It is not safe for concurrent
// use; each generation has its own.
type Matcher struct {
	c     *Compiled
	k     *closer
	cur   []config
	next  []config
	spare []config
	sets  [][]config // Mask's walks, one set per depth
	err   error
}

// NewMatcher starts a match at the root rule.
func (c *Compiled) NewMatcher() *Matcher {
	m := &Matcher{c: c, k: newCloser(c, nil)}
	m.cur, _ = m.k.close(nil, []config{{c.start[0], nil}})
	return m
}

// Advance moves past bs and reports whether the grammar allows them; when
// it does not, the matcher is unchanged. Err says when a refusal came from
// a limit (MaxConfigs) rather than the grammar.
func (m *Matcher) Advance(bs []byte) bool {
	m.k.budget = MaxMaskWork
	cur := append(m.next[:0], m.cur...)
	spare := m.spare
	for _, b := range bs {
		var ok bool
		if spare, ok = m.k.step(spare[:0], cur, b); !ok {
			m.err = errTooCostly()
			m.next, m.spare = cur, spare
			return false
		}
		if len(spare) == 0 {
			m.next, m.spare = cur, spare
			return false
		}
		cur, spare = spare, cur
	}
	m.cur, m.next, m.spare = cur, m.cur, spare
	return true
}

// Err is the limit that refused the last Advance, if one did.
func (m *Matcher) Err() error { return m.err }

// Done reports whether the bytes so far are a whole match (the generation
// may end here).
func (m *Matcher) Done() bool {
	for _, x := range m.cur {
		if x.parent == nil && m.c.states[x.state].accept {
			return true
		}
	}
	return false
}

// More reports whether any byte may follow.
func (m *Matcher) More() bool {
	for _, x := range m.cur {
		if len(m.c.states[x.state].edges) > 0 {
			return true
		}
	}
	return false
}

// Match reports whether the grammar matches all of s.
func (c *Compiled) Match(s []byte) bool {
	m := c.NewMatcher()
	return m.Advance(s) && m.Done()
}
