package grammar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Limits that keep a hostile grammar or schema from taking memory out of
// proportion: automaton states over all rules (a repetition {m,n} copies
// its body n times), and the rules a grammar may have.
const (
	MaxStates = 1 << 18
	MaxRules  = 1 << 14
	maxWork   = 1 << 23 // byte edges visited and subset members kept while determinizing
)

func trailingZeros(x uint64) int { return bits.TrailingZeros64(x) }

func popcount(s *byteSet) int {
	return bits.OnesCount64(s[0]) + bits.OnesCount64(s[1]) + bits.OnesCount64(s[2]) + bits.OnesCount64(s[3])
}

// ErrGrammar is the kind (errors.Is) of every error about a grammar or a
// schema: what it says, or that it is too large or left-recursive.
var ErrGrammar = errors.New("invalid grammar")

func grammarError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrGrammar, fmt.Sprintf(format, args...))
}

// A Compiled grammar is its rules as automata, ready to match. It is
// immutable but for the token masks it caches, which are safe to compute
// from several goroutines: one Compiled serves concurrent requests.
type Compiled struct {
	names  []string
	start  []int32 // per rule, its automaton's first state
	states []state // all rules' states; a state belongs to one rule
	masks  maskCache
}

// A state of a rule's deterministic automaton: its byte edges (sorted
// ranges), its calls of other rules (and where each returns), and whether
// the rule may end here.
type state struct {
	rule   int32
	accept bool
	edges  []edge
	calls  []call
	table  *[256]int32 // the edges as a table, for states with many
}

// Tables: states with at least tableEdges edges (a string's characters,
// say) look bytes up in a table, for the first maxTables of them.
const (
	tableEdges = 6
	maxTables  = 4096
)

type edge struct {
	lo, hi byte
	to     int32
}

type call struct{ rule, ret int32 }

// next is the state after byte b, or -1.
func (s *state) next(b byte) int32 {
	if s.table != nil {
		return s.table[b]
	}
	for _, e := range s.edges {
		if b < e.lo {
			return -1
		}
		if b <= e.hi {
			return e.to
		}
	}
	return -1
}

// nfa is one rule's Thompson automaton while compiling.
type nfa struct {
	states []nstate
	budget *int // states left over the whole grammar
	mark   []uint32
	epoch  uint32
	stack  []int32
}

type nstate struct {
	eps      []int32
	set      byteSet
	byteTo   int32
	callRule int32
	callTo   int32
}

func (n *nfa) add() (int32, error) {
	if *n.budget <= 0 {
		return 0, grammarError("more than %d automaton states (a repetition's bound or the schema is too large)", MaxStates)
	}
	*n.budget--
	n.states = append(n.states, nstate{byteTo: -1, callRule: -1})
	return int32(len(n.states) - 1), nil
}

// build adds e's states, returning its entry and exit.
func (n *nfa) build(e *expr, depth int) (in, out int32, err error) {
	if depth > 1000 {
		return 0, 0, grammarError("expressions nested more than 1000 deep")
	}
	if in, err = n.add(); err != nil {
		return
	}
	if out, err = n.add(); err != nil {
		return
	}
	switch e.kind {
	case exBytes:
		n.states[in].set, n.states[in].byteTo = e.set, out
	case exRef:
		n.states[in].callRule, n.states[in].callTo = int32(e.ref), out
	case exSeq:
		cur := in
		for _, s := range e.subs {
			a, b, err := n.build(s, depth+1)
			if err != nil {
				return 0, 0, err
			}
			n.states[cur].eps = append(n.states[cur].eps, a)
			cur = b
		}
		n.states[cur].eps = append(n.states[cur].eps, out)
	case exAlt:
		for _, s := range e.subs {
			a, b, err := n.build(s, depth+1)
			if err != nil {
				return 0, 0, err
			}
			n.states[in].eps = append(n.states[in].eps, a)
			n.states[b].eps = append(n.states[b].eps, out)
		}
	case exRepeat:
		cur := in
		for range e.min {
			a, b, err := n.build(e.subs[0], depth+1)
			if err != nil {
				return 0, 0, err
			}
			n.states[cur].eps = append(n.states[cur].eps, a)
			cur = b
		}
		switch {
		case e.max < 0: // a loop
			a, b, err := n.build(e.subs[0], depth+1)
			if err != nil {
				return 0, 0, err
			}
			n.states[cur].eps = append(n.states[cur].eps, a, out)
			n.states[b].eps = append(n.states[b].eps, cur)
		default: // nested options
			for range e.max - e.min {
				a, b, err := n.build(e.subs[0], depth+1)
				if err != nil {
					return 0, 0, err
				}
				n.states[cur].eps = append(n.states[cur].eps, a, out)
				cur = b
			}
			n.states[cur].eps = append(n.states[cur].eps, out)
		}
	}
	return in, out, nil
}

// closure returns set (sorted, no repeats) with every state reachable
// from it by empty moves.
func (n *nfa) closure(set []int32) []int32 {
	if len(n.mark) < len(n.states) {
		n.mark = make([]uint32, len(n.states))
	}
	n.epoch++
	out := make([]int32, 0, len(set))
	stack := n.stack[:0]
	for _, s := range set {
		if n.mark[s] != n.epoch {
			n.mark[s] = n.epoch
			stack = append(stack, s)
		}
	}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, s)
		for _, t := range n.states[s].eps {
			if n.mark[t] != n.epoch {
				n.mark[t] = n.epoch
				stack = append(stack, t)
			}
		}
	}
	n.stack = stack
	slices.Sort(out)
	return out
}

func setKey(set []int32) string {
	b := make([]byte, 4*len(set))
	for i, s := range set {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(s))
	}
	return string(b)
}

// Compile turns g into automata. It fails on a rule used but not defined,
// on left recursion (a rule that can reach itself without reading a byte,
// which no stack of frames could match), and past MaxStates or MaxRules.
func (g *Grammar) Compile() (*Compiled, error) {
	if len(g.rules) > MaxRules {
		return nil, grammarError("%d rules; at most %d", len(g.rules), MaxRules)
	}
	c := &Compiled{start: make([]int32, len(g.rules))}
	for _, r := range g.rules {
		if r.body == nil {
			return nil, grammarError("rule %q is used but not defined", r.name)
		}
		c.names = append(c.names, r.name)
	}
	budget, work := MaxStates, maxWork
	for i, r := range g.rules {
		n := &nfa{budget: &budget}
		in, out, err := n.build(r.body, 0)
		if err != nil {
			return nil, err
		}
		if c.start[i], err = c.determinize(n, int32(i), in, out, &budget, &work); err != nil {
			return nil, err
		}
	}
	if err := c.checkLeftRecursion(); err != nil {
		return nil, err
	}
	tables := 0
	for i := range c.states {
		s := &c.states[i]
		if len(s.edges) >= tableEdges && tables < maxTables {
			tables++
			s.table = new([256]int32)
			for b := range s.table {
				s.table[b] = -1
			}
			for _, e := range s.edges {
				for b := int(e.lo); b <= int(e.hi); b++ {
					s.table[b] = e.to
				}
			}
		}
	}
	c.masks.init(len(c.states))
	return c, nil
}

// determinize adds the states of rule's deterministic automaton (subsets
// of n's states) and returns its first state.
func (c *Compiled) determinize(n *nfa, rule, in, out int32, budget, work *int) (int32, error) {
	ids := map[string]int32{}
	var sets [][]int32
	intern := func(set []int32) (int32, error) {
		set = n.closure(set)
		k := setKey(set)
		if id, ok := ids[k]; ok {
			return id, nil
		}
		if *budget <= 0 {
			return 0, grammarError("more than %d automaton states (a repetition's bound or the schema is too large)", MaxStates)
		}
		*budget--
		if *work -= len(set); *work < 0 {
			return 0, grammarError("the grammar is too large to compile (automaton work past %d steps)", maxWork)
		}
		id := int32(len(c.states))
		c.states = append(c.states, state{rule: rule, accept: slices.Contains(set, out)})
		ids[k] = id
		sets = append(sets, set)
		return id, nil
	}
	first, err := intern([]int32{in})
	if err != nil {
		return 0, err
	}
	var targets [256][]int32
	for i := first; int(i) < len(c.states); i++ {
		set := sets[i-first]
		for b := range targets {
			targets[b] = targets[b][:0]
		}
		calls := map[int32][]int32{}
		var callOrder []int32
		for _, s := range set {
			ns := &n.states[s]
			if ns.byteTo >= 0 {
				for w, word := range ns.set {
					for ; word != 0; word &= word - 1 {
						b := 64*w + trailingZeros(word)
						targets[b] = append(targets[b], ns.byteTo)
					}
				}
				if *work -= 1 + popcount(&ns.set); *work < 0 {
					return 0, grammarError("the grammar is too large to compile (automaton work past %d steps)", maxWork)
				}
			}
			if ns.callRule >= 0 {
				if _, ok := calls[ns.callRule]; !ok {
					callOrder = append(callOrder, ns.callRule)
				}
				calls[ns.callRule] = append(calls[ns.callRule], ns.callTo)
			}
		}
		var edges []edge
		for b := 0; b < 256; {
			if len(targets[b]) == 0 {
				b++
				continue
			}
			e := b
			for e+1 < 256 && slices.Equal(targets[e+1], targets[b]) {
				e++
			}
			to, err := intern(slices.Clone(targets[b]))
			if err != nil {
				return 0, err
			}
			if k := len(edges); k > 0 && edges[k-1].to == to && int(edges[k-1].hi)+1 == b {
				edges[k-1].hi = byte(e)
			} else {
				edges = append(edges, edge{byte(b), byte(e), to})
			}
			b = e + 1
		}
		var cs []call
		for _, r := range callOrder {
			to, err := intern(calls[r])
			if err != nil {
				return 0, err
			}
			cs = append(cs, call{r, to})
		}
		c.states[i].edges, c.states[i].calls = edges, cs
	}
	return first, nil
}

// checkLeftRecursion finds the rules each rule can call before reading a
// byte (through calls of rules that can match nothing) and fails on a
// cycle among them.
func (c *Compiled) checkLeftRecursion() error {
	// empty[s]: the rule can end from state s without reading a byte.
	nullable := make([]bool, len(c.start))
	empty := make([]bool, len(c.states))
	for changed := true; changed; {
		changed = false
		for i := range c.states {
			if empty[i] {
				continue
			}
			s := &c.states[i]
			e := s.accept
			for _, k := range s.calls {
				e = e || nullable[k.rule] && empty[k.ret]
			}
			if e {
				empty[i], changed = true, true
				if c.start[s.rule] == int32(i) {
					nullable[s.rule] = true
				}
			}
		}
	}
	// first[r]: the rules r can call before reading a byte.
	first := make([][]int32, len(c.start))
	for r, st := range c.start {
		seen := map[int32]bool{st: true}
		todo := []int32{st}
		for len(todo) > 0 {
			s := todo[len(todo)-1]
			todo = todo[:len(todo)-1]
			for _, k := range c.states[s].calls {
				if !slices.Contains(first[r], k.rule) {
					first[r] = append(first[r], k.rule)
				}
				if nullable[k.rule] && !seen[k.ret] {
					seen[k.ret] = true
					todo = append(todo, k.ret)
				}
			}
		}
	}
	// A depth-first search for a cycle.
	color := make([]byte, len(c.start))
	var path []int32
	var visit func(r int32) error
	visit = func(r int32) error {
		color[r] = 1
		path = append(path, r)
		for _, k := range first[r] {
			switch color[k] {
			case 1:
				i := slices.Index(path, k)
				names := make([]string, 0, len(path)-i+1)
				for _, p := range path[i:] {
					names = append(names, c.names[p])
				}
				names = append(names, c.names[k])
				return grammarError("left recursion: %s", strings.Join(names, " -> "))
			case 0:
				if err := visit(k); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		color[r] = 2
		return nil
	}
	for r := range c.start {
		if color[r] == 0 {
			if err := visit(int32(r)); err != nil {
				return err
			}
		}
	}
	return nil
}
