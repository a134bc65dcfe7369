package grammar

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on a GBNF source: its size, how deep groups nest, and the bound
// of a repetition.
const (
	MaxGBNFBytes  = 1 << 20
	maxNesting    = 200
	maxRepetition = 100000
)

// ParseGBNF reads a grammar in llama.cpp's GBNF: rules "name ::= body"
// (names of letters, digits, - and _), the start rule named root; bodies of literals ("..."), character classes
// ([a-z], [^...]), any character (.), rule names, groups, alternatives
// (|) and repetitions (*, +, ?, {m}, {m,}, {m,n}, {,n}); # comments.
// Literals and classes are over Unicode code points, matched as UTF-8.
// Errors give the line and column.
func ParseGBNF(src string) (*Grammar, error) {
	if len(src) > MaxGBNFBytes {
		return nil, grammarError("grammar of %d bytes; at most %d", len(src), MaxGBNFBytes)
	}
	if !utf8.ValidString(src) {
		return nil, grammarError("grammar is not valid UTF-8")
	}
	p := &gbnfParser{src: src, g: newGrammar("root"), defined: map[string]bool{}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	if !p.defined["root"] {
		return nil, grammarError("no rule named root")
	}
	for _, r := range p.g.rules {
		if r.body == nil {
			return nil, grammarError("rule %q is used but not defined", r.name)
		}
	}
	return p.g, nil
}

type gbnfParser struct {
	src     string
	pos     int
	g       *Grammar
	defined map[string]bool
}

func (p *gbnfParser) errorf(format string, args ...any) error {
	line := 1 + strings.Count(p.src[:p.pos], "\n")
	col := p.pos - strings.LastIndexByte(p.src[:p.pos], '\n')
	return grammarError("line %d, column %d: %s", line, col, fmt.Sprintf(format, args...))
}

// space skips blanks and comments, and newlines when newlines is set.
func (p *gbnfParser) space(newlines bool) {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		case (c == '\n' || c == '\r') && newlines:
			p.pos++
		default:
			return
		}
	}
}

func isWordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func (p *gbnfParser) name() string {
	start := p.pos
	for p.pos < len(p.src) && isWordChar(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *gbnfParser) parse() error {
	for {
		p.space(true)
		if p.pos >= len(p.src) {
			return nil
		}
		name := p.name()
		if name == "" {
			return p.errorf("expected a rule name, found %q", p.src[p.pos:p.pos+1])
		}
		if p.defined[name] {
			return p.errorf("rule %q is defined twice", name)
		}
		p.space(false)
		if !strings.HasPrefix(p.src[p.pos:], "::=") {
			return p.errorf("expected ::= after %q", name)
		}
		p.pos += 3
		p.space(true)
		if _, ok := p.g.index[name]; !ok && len(p.g.rules) >= MaxRules {
			return p.errorf("more than %d rules", MaxRules)
		}
		body, err := p.alternatives(0)
		if err != nil {
			return err
		}
		p.g.define(name, body)
		p.defined[name] = true
		p.space(false)
		if p.pos < len(p.src) && p.src[p.pos] != '\n' && p.src[p.pos] != '\r' {
			return p.errorf("unexpected %q", p.src[p.pos:p.pos+1])
		}
	}
}

// alternatives reads sequences separated by |; nested is the depth of
// the groups around it (newlines are blanks inside a group).
func (p *gbnfParser) alternatives(nested int) (*expr, error) {
	var alts []*expr
	for {
		s, err := p.sequence(nested)
		if err != nil {
			return nil, err
		}
		alts = append(alts, s)
		if p.pos >= len(p.src) || p.src[p.pos] != '|' {
			return alt(alts...), nil
		}
		p.pos++
		p.space(true)
	}
}

func (p *gbnfParser) sequence(nested int) (*expr, error) {
	var items []*expr
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		var item *expr
		switch {
		case c == '"':
			start := p.pos
			p.pos++
			var b strings.Builder
			for {
				if p.pos >= len(p.src) {
					p.pos = start
					return nil, p.errorf("unterminated literal")
				}
				if p.src[p.pos] == '"' {
					p.pos++
					break
				}
				r, err := p.char()
				if err != nil {
					return nil, err
				}
				b.WriteRune(r)
			}
			item = literal(b.String())
		case c == '[':
			start := p.pos
			p.pos++
			negated := p.pos < len(p.src) && p.src[p.pos] == '^'
			if negated {
				p.pos++
			}
			var ranges []runeRange
			for {
				if p.pos >= len(p.src) {
					p.pos = start
					return nil, p.errorf("unterminated character class")
				}
				if p.src[p.pos] == ']' {
					p.pos++
					break
				}
				lo, err := p.char()
				if err != nil {
					return nil, err
				}
				hi := lo
				if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
					p.pos++
					if hi, err = p.char(); err != nil {
						return nil, err
					}
					if hi < lo {
						return nil, p.errorf("range %q-%q is backwards", lo, hi)
					}
				}
				ranges = append(ranges, runeRange{lo, hi})
			}
			item = utf8Class(ranges, negated)
		case c == '.':
			p.pos++
			item = utf8Class(nil, true)
		case c == '(':
			if nested >= maxNesting {
				return nil, p.errorf("groups nested more than %d deep", maxNesting)
			}
			p.pos++
			p.space(true)
			inner, err := p.alternatives(nested + 1)
			if err != nil {
				return nil, err
			}
			if p.pos >= len(p.src) || p.src[p.pos] != ')' {
				return nil, p.errorf("expected )")
			}
			p.pos++
			item = inner
		case c == '<':
			return nil, p.errorf("token references (<...>) are not supported")
		case isWordChar(c):
			start := p.pos
			name := p.name()
			// The next rule's name begins a new rule, not this sequence.
			save := p.pos
			p.space(false)
			if strings.HasPrefix(p.src[p.pos:], "::=") {
				p.pos = start
				return seqOrEmpty(items), nil
			}
			p.pos = save
			if len(p.g.rules) >= MaxRules {
				if _, ok := p.g.index[name]; !ok {
					return nil, p.errorf("more than %d rules", MaxRules)
				}
			}
			item = p.g.ref(name)
		default:
			return seqOrEmpty(items), nil
		}
		// Repetitions.
		for p.pos < len(p.src) {
			switch p.src[p.pos] {
			case '*':
				item = repeat(item, 0, -1)
			case '+':
				item = repeat(item, 1, -1)
			case '?':
				item = opt(item)
			case '{':
				p.pos++
				lo, hi, err := p.bounds()
				if err != nil {
					return nil, err
				}
				item = repeat(item, lo, hi)
				continue
			default:
				goto done
			}
			p.pos++
		}
	done:
		items = append(items, item)
		p.space(nested > 0)
	}
	return seqOrEmpty(items), nil
}

func seqOrEmpty(items []*expr) *expr {
	if len(items) == 0 {
		return &expr{kind: exSeq}
	}
	return seq(items...)
}

// bounds reads "m}", "m,}", "m,n}" or ",n}" after a {.
func (p *gbnfParser) bounds() (lo, hi int, err error) {
	num := func() (int, bool, error) {
		p.space(false)
		start := p.pos
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == start {
			return 0, false, nil
		}
		n, err := strconv.Atoi(p.src[start:p.pos])
		if err != nil || n > maxRepetition {
			return 0, false, p.errorf("repetition bound %s is over %d", p.src[start:p.pos], maxRepetition)
		}
		p.space(false)
		return n, true, nil
	}
	lo, hasLo, err := num()
	if err != nil {
		return 0, 0, err
	}
	hi = lo
	if p.pos < len(p.src) && p.src[p.pos] == ',' {
		p.pos++
		var hasHi bool
		if hi, hasHi, err = num(); err != nil {
			return 0, 0, err
		}
		if !hasHi {
			hi = -1
		}
	} else if !hasLo {
		return 0, 0, p.errorf("expected a number in {}")
	}
	if p.pos >= len(p.src) || p.src[p.pos] != '}' {
		return 0, 0, p.errorf("expected } to end the repetition")
	}
	p.pos++
	if hi >= 0 && hi < lo {
		return 0, 0, p.errorf("repetition {%d,%d} is backwards", lo, hi)
	}
	return lo, hi, nil
}

// char reads one character of a literal or class: a UTF-8 character or
// an escape (\n \r \t \\ \" \[ \] \- \xNN \uNNNN \UNNNNNNNN).
func (p *gbnfParser) char() (rune, error) {
	r, n := utf8.DecodeRuneInString(p.src[p.pos:])
	if r != '\\' {
		p.pos += n
		return r, nil
	}
	p.pos++
	if p.pos >= len(p.src) {
		return 0, p.errorf("escape at the end")
	}
	c := p.src[p.pos]
	p.pos++
	switch c {
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case '\\', '"', '[', ']', '-', '^', '/':
		return rune(c), nil
	case 'x', 'u', 'U':
		n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
		if p.pos+n > len(p.src) {
			return 0, p.errorf("\\%c needs %d hex digits", c, n)
		}
		v, err := strconv.ParseUint(p.src[p.pos:p.pos+n], 16, 32)
		if err != nil || v > utf8.MaxRune || v >= 0xD800 && v <= 0xDFFF {
			return 0, p.errorf("bad escape \\%c%s", c, p.src[p.pos:p.pos+n])
		}
		p.pos += n
		return rune(v), nil
	}
	return 0, p.errorf("unknown escape \\%c", c)
}
