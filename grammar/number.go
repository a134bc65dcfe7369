package grammar

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// Numbers between bounds, as grammars over their decimal digits: a JSON
// Schema minimum or maximum becomes exact comparisons of digit strings
// (longer integers are larger; equal lengths compare digit by digit;
// fractions compare as padded digit strings), so that every number the
// grammar admits is within the bounds and every such decimal number
// (without an exponent) is admitted.

// maxBoundDigits bounds the digits of a minimum or maximum (1e400 would
// spell 401 of them).
const maxBoundDigits = 400

// decimal is a number's magnitude as canonical digit strings: the integer
// part without leading zeros ("0" for none) and the fraction without
// trailing zeros.
type decimal struct {
	neg       bool
	int, frac string
}

// parseDecimal spells out a JSON number, exponent applied.
func parseDecimal(n json.Number) (decimal, error) {
	s := n.String()
	var d decimal
	if strings.HasPrefix(s, "-") {
		d.neg, s = true, s[1:]
	}
	exp := 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		var err error
		if _, err = fmt.Sscan(s[i+1:], &exp); err != nil || exp > maxBoundDigits || exp < -maxBoundDigits {
			return d, fmt.Errorf("bound %s is out of range", n)
		}
		s = s[:i]
	}
	point := len(s)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		point, s = i, s[:i]+s[i+1:]
	}
	point += exp
	switch {
	case point <= 0:
		d.int, d.frac = "0", strings.Repeat("0", -point)+s
	case point >= len(s):
		d.int = s + strings.Repeat("0", point-len(s))
	default:
		d.int, d.frac = s[:point], s[point:]
	}
	d.int = strings.TrimLeft(d.int, "0")
	if d.int == "" {
		d.int = "0"
	}
	d.frac = strings.TrimRight(d.frac, "0")
	if len(d.int)+len(d.frac) > maxBoundDigits {
		return d, fmt.Errorf("bound %s has more than %d digits", n, maxBoundDigits)
	}
	if d.int == "0" && d.frac == "" {
		d.neg = false
	}
	return d, nil
}

// rat is the decimal's value.
func (d decimal) rat() *big.Rat {
	r, _ := new(big.Rat).SetString(d.int + "." + d.frac + "0")
	if d.neg {
		r.Neg(r)
	}
	return r
}

func digits(lo, hi byte) *expr { return bytesExpr(lo, hi) }

var anyDigit = digits('0', '9')

// geSame: digit strings of len(t) not less than t.
func geSame(t string) *expr {
	alts := []*expr{literal(t)}
	for i := range len(t) {
		if t[i] < '9' {
			alts = append(alts, seq(literal(t[:i]), digits(t[i]+1, '9'), repeat(anyDigit, len(t)-i-1, len(t)-i-1)))
		}
	}
	return alt(alts...)
}

// leSame: digit strings of len(t) not more than t; the first digit at
// least first.
func leSame(t string, first byte) *expr {
	alts := []*expr{literal(t)}
	for i := range len(t) {
		low := byte('0')
		if i == 0 {
			low = first
		}
		if t[i] > low {
			alts = append(alts, seq(literal(t[:i]), digits(low, t[i]-1), repeat(anyDigit, len(t)-i-1, len(t)-i-1)))
		}
	}
	return alt(alts...)
}

// canonicalFirst is the least first digit of a canonical integer of n
// digits.
func canonicalFirst(n int) byte {
	if n > 1 {
		return '1'
	}
	return '0'
}

// natAtLeast: canonical naturals >= a.
func natAtLeast(a string) *expr {
	return alt(geSame(a), seq(digits('1', '9'), repeat(anyDigit, len(a), -1)))
}

// natBetween: canonical naturals in a..b (a <= b).
func natBetween(a, b string) *expr {
	if len(a) == len(b) {
		k := 0
		for k < len(a) && a[k] == b[k] {
			k++
		}
		if k == len(a) {
			return literal(a)
		}
		rest := len(a) - k - 1
		alts := []*expr{
			seq(literal(a[:k+1]), geSame(a[k+1:])),
			seq(literal(b[:k+1]), leSame(b[k+1:], '0')),
		}
		if a[k]+1 < b[k] {
			alts = append(alts, seq(literal(a[:k]), digits(a[k]+1, b[k]-1), repeat(anyDigit, rest, rest)))
		}
		return alt(alts...)
	}
	alts := []*expr{geSame(a), leSame(b, canonicalFirst(len(b)))}
	if len(b)-len(a) >= 2 {
		alts = append(alts, seq(digits('1', '9'), repeat(anyDigit, len(a), len(b)-2)))
	}
	return alt(alts...)
}

var natAny = alt(literal("0"), seq(digits('1', '9'), repeat(anyDigit, 0, -1)))

// integerRange: JSON integers in lo..hi (nil: unbounded); lo <= hi.
func integerRange(lo, hi *big.Int) *expr {
	neg := func(e *expr) *expr { return seq(literal("-"), e) }
	abs := func(x *big.Int) string { return new(big.Int).Abs(x).String() }
	switch {
	case lo == nil && hi == nil:
		return seq(opt(literal("-")), natAny)
	case hi == nil:
		if lo.Sign() >= 0 {
			return natAtLeast(lo.String())
		}
		return alt(neg(natBetween("1", abs(lo))), natAny)
	case lo == nil:
		if hi.Sign() >= 0 {
			return alt(neg(natAtLeast("1")), natBetween("0", hi.String()))
		}
		return neg(natAtLeast(abs(hi)))
	case lo.Sign() >= 0:
		return natBetween(lo.String(), hi.String())
	case hi.Sign() < 0:
		return neg(natBetween(abs(hi), abs(lo)))
	default:
		return alt(neg(natBetween("1", abs(lo))), natBetween("0", hi.String()))
	}
}

// Fractions: f is a fraction's digits after the point, worth 0.f; these
// give the non-empty ones (a point needs a digit), and whether no point at
// all (f empty, worth 0) is allowed is the caller's to say.

// fracAtLeast: non-empty f with 0.f >= 0.t.
func fracAtLeast(t string) *expr {
	alts := []*expr{seq(literal(t), repeat(anyDigit, 0, -1))}
	if t == "" {
		alts[0] = repeat(anyDigit, 1, -1)
	}
	for i := range len(t) {
		if t[i] < '9' {
			alts = append(alts, seq(literal(t[:i]), digits(t[i]+1, '9'), repeat(anyDigit, 0, -1)))
		}
	}
	return alt(alts...)
}

// fracAtMost: non-empty f with 0.f <= 0.t.
func fracAtMost(t string) *expr {
	alts := []*expr{seq(literal(t), repeat(literal("0"), 0, -1))}
	if t == "" {
		alts[0] = repeat(literal("0"), 1, -1)
	}
	for i := range len(t) {
		if i > 0 {
			alts = append(alts, literal(t[:i]))
		}
		if t[i] > '0' {
			alts = append(alts, seq(literal(t[:i]), digits('0', t[i]-1), repeat(anyDigit, 0, -1)))
		}
	}
	return alt(alts...)
}

// fracBetween: non-empty f with 0.a <= 0.f <= 0.b (a <= b).
func fracBetween(a, b string) *expr {
	k := 0
	for k < len(a) && k < len(b) && a[k] == b[k] {
		k++
	}
	if k == len(a) {
		if a == "" {
			return fracAtMost(b)
		}
		return seq(literal(a), opt(fracAtMost(b[k:])))
	}
	// a[k] < b[k]: b cannot end before a does, as a <= b and neither has
	// trailing zeros.
	geRest := repeat(anyDigit, 0, -1)
	if k+1 < len(a) {
		geRest = fracAtLeast(a[k+1:])
	}
	alts := []*expr{
		seq(literal(a[:k+1]), geRest),
		seq(literal(b[:k+1]), opt(fracAtMost(b[k+1:]))),
	}
	if a[k]+1 < b[k] {
		alts = append(alts, seq(literal(a[:k]), digits(a[k]+1, b[k]-1), repeat(anyDigit, 0, -1)))
	}
	return alt(alts...)
}

// withPoint is the ".digits" of a number from a fraction language, and
// none at all when noneOK.
func withPoint(frac *expr, noneOK bool) *expr {
	e := seq(literal("."), frac)
	if noneOK {
		return opt(e)
	}
	return e
}

// decimalRange: JSON numbers without an exponent in lo..hi (nil:
// unbounded), lo <= hi.
func decimalRange(lo, hi *decimal) *expr {
	anyFrac := opt(seq(literal("."), repeat(anyDigit, 1, -1)))
	anyNonneg := seq(natAny, anyFrac)
	neg := func(e *expr) *expr { return seq(literal("-"), e) }
	// atLeast: non-negative numbers >= d.
	atLeast := func(d decimal) *expr {
		next := new(big.Int)
		next.SetString(d.int, 10)
		next.Add(next, big.NewInt(1))
		return alt(seq(natAtLeast(next.String()), anyFrac), seq(literal(d.int), withPoint(fracAtLeast(d.frac), d.frac == "")))
	}
	// atMost: non-negative numbers <= d.
	atMost := func(d decimal) *expr {
		alts := []*expr{seq(literal(d.int), withPoint(fracAtMost(d.frac), true))}
		if d.int != "0" {
			prev := new(big.Int)
			prev.SetString(d.int, 10)
			prev.Sub(prev, big.NewInt(1))
			alts = append(alts, seq(natBetween("0", prev.String()), anyFrac))
		}
		return alt(alts...)
	}
	// between: non-negative numbers in a..b.
	between := func(a, b decimal) *expr {
		if a.int == b.int {
			return seq(literal(a.int), withPoint(fracBetween(a.frac, b.frac), a.frac == ""))
		}
		alts := []*expr{
			seq(literal(a.int), withPoint(fracAtLeast(a.frac), a.frac == "")),
			seq(literal(b.int), withPoint(fracAtMost(b.frac), true)),
		}
		ai, bi := new(big.Int), new(big.Int)
		ai.SetString(a.int, 10)
		bi.SetString(b.int, 10)
		ai.Add(ai, big.NewInt(1))
		bi.Sub(bi, big.NewInt(1))
		if ai.Cmp(bi) <= 0 {
			alts = append(alts, seq(natBetween(ai.String(), bi.String()), anyFrac))
		}
		return alt(alts...)
	}
	mag := func(d *decimal) decimal { return decimal{int: d.int, frac: d.frac} }
	switch {
	case lo == nil && hi == nil:
		return seq(opt(literal("-")), anyNonneg)
	case hi == nil:
		if !lo.neg {
			return atLeast(*lo)
		}
		return alt(neg(atMost(mag(lo))), anyNonneg)
	case lo == nil:
		if !hi.neg {
			return alt(neg(anyNonneg), atMost(*hi))
		}
		return neg(atLeast(mag(hi)))
	case !lo.neg:
		return between(*lo, *hi)
	case hi.neg:
		return neg(between(mag(hi), mag(lo)))
	default:
		return alt(neg(atMost(mag(lo))), atMost(*hi))
	}
}
