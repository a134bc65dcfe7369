package grammar

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// patternExpr compiles a JSON Schema pattern (the regular expressions
// common to ECMA-262 and Go's RE2: literals and escapes, classes, ., \d \w
// \s and their negations, groups, alternatives, greedy or lazy
// quantifiers, ^ and $ around the whole) into an expression over the
// JSON text of a string's contents: each character as JSON writes it
// (quote, backslash and controls escaped). Patterns are unanchored, as
// JSON Schema says: without ^ any characters may come first, without $
// any may follow. Look-arounds, backreferences and \b are refused.
func patternExpr(pattern string) (*expr, error) {
	if !utf8.ValidString(pattern) {
		return nil, fmt.Errorf("pattern is not valid UTF-8")
	}
	p := &regexParser{src: pattern}
	anchoredStart := p.eat('^')
	e, err := p.alternatives(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.src) {
		if p.src[p.pos] == ')' {
			return nil, p.errorf("unbalanced )")
		}
		return nil, p.errorf("unexpected %q", p.src[p.pos:p.pos+1])
	}
	any := repeat(jsonChars(nil, true), 0, -1)
	parts := []*expr{}
	if !anchoredStart {
		parts = append(parts, any)
	}
	parts = append(parts, e)
	if !p.anchoredEnd {
		parts = append(parts, any)
	}
	return seq(parts...), nil
}

type regexParser struct {
	src         string
	pos         int
	anchoredEnd bool
}

func (p *regexParser) errorf(format string, args ...any) error {
	return fmt.Errorf("pattern %q at offset %d: %s", p.src, p.pos, fmt.Sprintf(format, args...))
}

func (p *regexParser) eat(c byte) bool {
	if p.pos < len(p.src) && p.src[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *regexParser) alternatives(depth int) (*expr, error) {
	if depth > maxNesting {
		return nil, p.errorf("groups nested more than %d deep", maxNesting)
	}
	var alts []*expr
	for {
		s, err := p.sequence(depth)
		if err != nil {
			return nil, err
		}
		alts = append(alts, s)
		if !p.eat('|') {
			return alt(alts...), nil
		}
		if p.anchoredEnd {
			return nil, p.errorf("$ before the end of the pattern is not supported")
		}
	}
}

func (p *regexParser) sequence(depth int) (*expr, error) {
	var items []*expr
	for p.pos < len(p.src) {
		if p.anchoredEnd {
			return nil, p.errorf("$ before the end of the pattern is not supported")
		}
		c := p.src[p.pos]
		var item *expr
		switch c {
		case '|', ')':
			return seqOrEmpty(items), nil
		case '$':
			p.pos++
			if depth > 0 || p.pos < len(p.src) {
				return nil, p.errorf("$ before the end of the pattern is not supported")
			}
			p.anchoredEnd = true
			continue
		case '^':
			return nil, p.errorf("^ after the start of the pattern is not supported")
		case '(':
			p.pos++
			if p.eat('?') {
				switch {
				case p.eat(':'):
				case p.pos+1 < len(p.src) && p.src[p.pos] == '<' && p.src[p.pos+1] != '=' && p.src[p.pos+1] != '!':
					for p.pos < len(p.src) && p.src[p.pos] != '>' {
						p.pos++
					}
					if !p.eat('>') {
						return nil, p.errorf("unterminated group name")
					}
				case p.pos+1 < len(p.src) && p.src[p.pos] == 'P' && p.src[p.pos+1] == '<':
					for p.pos < len(p.src) && p.src[p.pos] != '>' {
						p.pos++
					}
					if !p.eat('>') {
						return nil, p.errorf("unterminated group name")
					}
				default:
					return nil, p.errorf("look-arounds and flags ((?...)) are not supported")
				}
			}
			inner, err := p.alternatives(depth + 1)
			if err != nil {
				return nil, err
			}
			if !p.eat(')') {
				return nil, p.errorf("missing )")
			}
			item = inner
		case '[':
			ranges, negated, err := p.class()
			if err != nil {
				return nil, err
			}
			item = jsonChars(ranges, negated)
		case '.':
			p.pos++
			item = jsonChars([]runeRange{{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}, true)
		case '*', '+', '?', '{':
			if c == '{' && !p.isQuantifier() {
				p.pos++
				item = jsonChars([]runeRange{{'{', '{'}}, false)
				break
			}
			return nil, p.errorf("nothing to repeat")
		case '\\':
			ranges, negated, err := p.escape(false)
			if err != nil {
				return nil, err
			}
			item = jsonChars(ranges, negated)
		default:
			r, n := utf8.DecodeRuneInString(p.src[p.pos:])
			p.pos += n
			item = jsonChars([]runeRange{{r, r}}, false)
		}
		item, err := p.quantifier(item)
		if err != nil {
			return nil, err
		}
		items = append(items, item)
	}
	return seqOrEmpty(items), nil
}

// isQuantifier reports whether a { at pos starts a {n}, {n,} or {n,m}.
func (p *regexParser) isQuantifier() bool {
	i := p.pos + 1
	start := i
	for i < len(p.src) && p.src[i] >= '0' && p.src[i] <= '9' {
		i++
	}
	if i == start {
		return false
	}
	if i < len(p.src) && p.src[i] == ',' {
		i++
		for i < len(p.src) && p.src[i] >= '0' && p.src[i] <= '9' {
			i++
		}
	}
	return i < len(p.src) && p.src[i] == '}'
}

func (p *regexParser) quantifier(item *expr) (*expr, error) {
	for p.pos < len(p.src) {
		lo, hi := 0, 0
		switch p.src[p.pos] {
		case '*':
			lo, hi = 0, -1
			p.pos++
		case '+':
			lo, hi = 1, -1
			p.pos++
		case '?':
			lo, hi = 0, 1
			p.pos++
		case '{':
			if !p.isQuantifier() {
				return item, nil
			}
			p.pos++
			start := p.pos
			for p.src[p.pos] != '}' && p.src[p.pos] != ',' {
				p.pos++
			}
			var err error
			if lo, err = strconv.Atoi(p.src[start:p.pos]); err != nil || lo > maxPatternRepeat {
				return nil, p.errorf("repetition over %d", maxPatternRepeat)
			}
			hi = lo
			if p.eat(',') {
				start = p.pos
				for p.src[p.pos] != '}' {
					p.pos++
				}
				hi = -1
				if p.pos > start {
					if hi, err = strconv.Atoi(p.src[start:p.pos]); err != nil || hi > maxPatternRepeat {
						return nil, p.errorf("repetition over %d", maxPatternRepeat)
					}
					if hi < lo {
						return nil, p.errorf("repetition {%d,%d} is backwards", lo, hi)
					}
				}
			}
			p.pos++ // }
		default:
			return item, nil
		}
		p.eat('?') // lazy: the same strings
		if p.pos < len(p.src) && (p.src[p.pos] == '*' || p.src[p.pos] == '+' || p.src[p.pos] == '?') {
			return nil, p.errorf("a quantifier after a quantifier")
		}
		item = repeat(item, lo, hi)
	}
	return item, nil
}

// maxPatternRepeat bounds a pattern's {n,m}.
const maxPatternRepeat = 1000

// class reads [...] after the [.
func (p *regexParser) class() ([]runeRange, bool, error) {
	start := p.pos
	p.pos++
	negated := p.eat('^')
	var ranges []runeRange
	first := true
	for {
		if p.pos >= len(p.src) {
			p.pos = start
			return nil, false, p.errorf("unterminated [")
		}
		if p.src[p.pos] == ']' && !first {
			p.pos++
			return ranges, negated, nil
		}
		first = false
		var lo rune
		if p.src[p.pos] == '\\' {
			rs, neg, err := p.escape(true)
			if err != nil {
				return nil, false, err
			}
			if neg || len(rs) != 1 || rs[0].lo != rs[0].hi {
				if neg {
					rs = complement(normalize(rs))
				}
				ranges = append(ranges, rs...)
				continue
			}
			lo = rs[0].lo
		} else {
			var n int
			lo, n = utf8.DecodeRuneInString(p.src[p.pos:])
			p.pos += n
		}
		hi := lo
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			p.pos++
			if p.src[p.pos] == '\\' {
				rs, neg, err := p.escape(true)
				if err != nil {
					return nil, false, err
				}
				if neg || len(rs) != 1 || rs[0].lo != rs[0].hi {
					return nil, false, p.errorf("a class shorthand cannot end a range")
				}
				hi = rs[0].lo
			} else {
				var n int
				hi, n = utf8.DecodeRuneInString(p.src[p.pos:])
				p.pos += n
			}
			if hi < lo {
				return nil, false, p.errorf("range is backwards")
			}
		}
		ranges = append(ranges, runeRange{lo, hi})
	}
}

var (
	digitRanges = []runeRange{{'0', '9'}}
	wordRanges  = []runeRange{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}
	spaceRanges = []runeRange{{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}}
)

// escape reads a \ escape: a character, or a shorthand class (negated for
// \D \W \S).
func (p *regexParser) escape(inClass bool) ([]runeRange, bool, error) {
	p.pos++
	if p.pos >= len(p.src) {
		return nil, false, p.errorf("\\ at the end")
	}
	c := p.src[p.pos]
	p.pos++
	one := func(r rune) ([]runeRange, bool, error) { return []runeRange{{r, r}}, false, nil }
	switch c {
	case 'd':
		return digitRanges, false, nil
	case 'D':
		return digitRanges, true, nil
	case 'w':
		return wordRanges, false, nil
	case 'W':
		return wordRanges, true, nil
	case 's':
		return spaceRanges, false, nil
	case 'S':
		return spaceRanges, true, nil
	case 'n':
		return one('\n')
	case 'r':
		return one('\r')
	case 't':
		return one('\t')
	case 'f':
		return one('\f')
	case 'v':
		return one('\v')
	case 'x', 'u':
		n := 2
		if c == 'u' {
			n = 4
		}
		if p.pos+n > len(p.src) {
			return nil, false, p.errorf("\\%c needs %d hex digits", c, n)
		}
		v, err := strconv.ParseUint(p.src[p.pos:p.pos+n], 16, 32)
		if err != nil {
			return nil, false, p.errorf("bad escape \\%c%s", c, p.src[p.pos:p.pos+n])
		}
		p.pos += n
		return one(rune(v))
	case 'b':
		if inClass {
			return one('\b')
		}
		return nil, false, p.errorf("\\b (word boundary) is not supported")
	}
	if c >= '0' && c <= '9' {
		return nil, false, p.errorf("backreferences and octal escapes are not supported")
	}
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
		return nil, false, p.errorf("unknown escape \\%c", c)
	}
	r, n := utf8.DecodeRuneInString(p.src[p.pos-1:])
	p.pos += n - 1
	return one(r)
}

// jsonChars matches one character in ranges (or, negated, outside them)
// as it appears inside a JSON string: the quote and backslash escaped,
// controls as their short escapes or \u00xx, the rest as UTF-8. The
// escapes share their backslash (a character class with all the controls
// stays a few automaton states, not one per escape).
func jsonChars(ranges []runeRange, negated bool) *expr {
	rs := normalize(ranges)
	if negated {
		rs = complement(rs)
	}
	in := func(c rune) bool {
		for _, r := range rs {
			if r.lo <= c && c <= r.hi {
				return true
			}
		}
		return false
	}
	var short byteSet // what follows the backslash in one-letter escapes
	var long []*expr  // \u00xx escapes
	controls := 0
	for c := rune(0); c < 0x20; c++ {
		if in(c) {
			controls++
		}
	}
	for c := rune(0); c < 0x20; c++ {
		if !in(c) {
			continue
		}
		if e := controlEscape(c); len(e) == 2 {
			short.add(e[1], e[1])
		} else if controls < 0x20 {
			long = append(long, literal(e[1:]))
		}
	}
	if controls == 0x20 {
		hex := bytesExpr('0', '9')
		hex.set.add('a', 'f')
		long = []*expr{seq(literal("u00"), bytesExpr('0', '1'), hex)}
	}
	for _, c := range []byte{'"', '\\'} {
		if in(rune(c)) {
			short.add(c, c)
		}
	}
	var plain []runeRange
	for _, r := range rs {
		if r.hi >= 0x20 {
			plain = append(plain, runeRange{max(r.lo, 0x20), r.hi})
		}
	}
	// The quote and backslash leave the plain ranges.
	plain = complement(normalize(append(complement(normalize(plain)), runeRange{'"', '"'}, runeRange{'\\', '\\'})))
	var alts []*expr
	if len(plain) > 0 {
		alts = append(alts, utf8Class(plain, false))
	}
	var escapes []*expr
	if !short.empty() {
		escapes = append(escapes, &expr{kind: exBytes, set: short})
	}
	escapes = append(escapes, long...)
	if len(escapes) > 0 {
		alts = append(alts, seq(literal(`\`), alt(escapes...)))
	}
	if len(alts) == 0 {
		return &expr{kind: exAlt}
	}
	return alt(alts...)
}

// controlEscape is how encoding/json writes control character c.
func controlEscape(c rune) string {
	switch c {
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	case '\b':
		return `\b`
	case '\f':
		return `\f`
	}
	return fmt.Sprintf(`\u%04x`, c)
}
