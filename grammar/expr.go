package grammar

import (
	"fmt"
	"strings"
)

// A Grammar is a set of named rules over bytes; rule 0 (Root) is where a
// match starts. Build one with ParseGBNF or FromJSONSchema, then Compile it.
type Grammar struct {
	rules []*rule
	index map[string]int
}

type rule struct {
	name string
	body *expr
}

// exprKind is what an expression matches.
type exprKind uint8

const (
	exBytes  exprKind = iota // one byte of a set
	exSeq                    // each of subs in turn
	exAlt                    // one of subs
	exRef                    // the rule numbered ref
	exRepeat                 // subs[0], min to max times (max < 0: unbounded)
)

// An expr is a node of a rule's body.
type expr struct {
	kind     exprKind
	set      byteSet
	subs     []*expr
	ref      int
	min, max int
}

// byteSet is a set of bytes, bit b of word b/64.
type byteSet [4]uint64

func (s *byteSet) add(lo, hi byte) {
	for b := int(lo); b <= int(hi); b++ {
		s[b/64] |= 1 << (b % 64)
	}
}

func (s *byteSet) has(b byte) bool { return s[b/64]&(1<<(b%64)) != 0 }

func (s *byteSet) empty() bool { return s[0]|s[1]|s[2]|s[3] == 0 }

func bytesExpr(lo, hi byte) *expr {
	e := &expr{kind: exBytes}
	e.set.add(lo, hi)
	return e
}

func seq(subs ...*expr) *expr {
	if len(subs) == 1 {
		return subs[0]
	}
	return &expr{kind: exSeq, subs: subs}
}

func alt(subs ...*expr) *expr {
	if len(subs) == 1 {
		return subs[0]
	}
	return &expr{kind: exAlt, subs: subs}
}

func repeat(e *expr, min, max int) *expr {
	return &expr{kind: exRepeat, subs: []*expr{e}, min: min, max: max}
}

func opt(e *expr) *expr { return repeat(e, 0, 1) }

// literal matches s byte by byte.
func literal(s string) *expr {
	subs := make([]*expr, len(s))
	for i := range len(s) {
		subs[i] = bytesExpr(s[i], s[i])
	}
	if len(subs) == 0 {
		return &expr{kind: exSeq}
	}
	return seq(subs...)
}

// newGrammar makes a grammar whose root rule is named root.
func newGrammar(root string) *Grammar {
	g := &Grammar{index: map[string]int{}}
	g.ruleID(root)
	return g
}

// ruleID returns the number of the rule named name, adding it (with no
// body yet) if it is new.
func (g *Grammar) ruleID(name string) int {
	if id, ok := g.index[name]; ok {
		return id
	}
	g.rules = append(g.rules, &rule{name: name})
	g.index[name] = len(g.rules) - 1
	return len(g.rules) - 1
}

// ref is an expression calling the rule named name.
func (g *Grammar) ref(name string) *expr { return &expr{kind: exRef, ref: g.ruleID(name)} }

// define sets the body of the rule named name.
func (g *Grammar) define(name string, body *expr) { g.rules[g.ruleID(name)].body = body }

// String lists the rules in GBNF's shape, for reading and debugging:
// byte sets appear as classes of \xNN byte ranges (where GBNF would read
// code points), so a grammar with bytes past 0x7F does not parse back.
func (g *Grammar) String() string {
	var b strings.Builder
	for _, r := range g.rules {
		fmt.Fprintf(&b, "%s ::= ", r.name)
		g.write(&b, r.body, false)
		b.WriteByte('\n')
	}
	return b.String()
}

func (g *Grammar) write(b *strings.Builder, e *expr, nested bool) {
	if e == nil {
		b.WriteString("()")
		return
	}
	switch e.kind {
	case exBytes:
		writeSet(b, &e.set)
	case exRef:
		b.WriteString(g.rules[e.ref].name)
	case exSeq, exAlt:
		sep := " "
		if e.kind == exAlt {
			sep = " | "
		}
		if nested || len(e.subs) == 0 {
			b.WriteByte('(')
		}
		for i, s := range e.subs {
			if i > 0 {
				b.WriteString(sep)
			}
			g.write(b, s, true)
		}
		if nested || len(e.subs) == 0 {
			b.WriteByte(')')
		}
	case exRepeat:
		g.write(b, e.subs[0], true)
		switch {
		case e.min == 0 && e.max == 1:
			b.WriteByte('?')
		case e.min == 0 && e.max < 0:
			b.WriteByte('*')
		case e.min == 1 && e.max < 0:
			b.WriteByte('+')
		case e.max < 0:
			fmt.Fprintf(b, "{%d,}", e.min)
		case e.min == e.max:
			fmt.Fprintf(b, "{%d}", e.min)
		default:
			fmt.Fprintf(b, "{%d,%d}", e.min, e.max)
		}
	}
}

// writeSet writes a byte set as a GBNF class of \xNN ranges.
func writeSet(b *strings.Builder, s *byteSet) {
	b.WriteByte('[')
	for lo := 0; lo < 256; lo++ {
		if !s.has(byte(lo)) {
			continue
		}
		hi := lo
		for hi+1 < 256 && s.has(byte(hi+1)) {
			hi++
		}
		fmt.Fprintf(b, `\x%02X`, lo)
		if hi > lo {
			fmt.Fprintf(b, `-\x%02X`, hi)
		}
		lo = hi
	}
	b.WriteByte(']')
}
