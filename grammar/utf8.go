package grammar

import "unicode/utf8"

// runeRange is a closed range of code points.
type runeRange struct{ lo, hi rune }

// utf8Class matches one UTF-8 encoded code point in ranges (or, negated,
// in none of them): an alternative of byte-range sequences, one per run of
// code points whose encodings share a length and differ only in a range
// at each byte. Surrogates are never matched.
func utf8Class(ranges []runeRange, negated bool) *expr {
	ranges = normalize(ranges)
	if negated {
		ranges = complement(ranges)
	}
	var alts []*expr
	// Single bytes go into one set.
	var ascii byteSet
	for _, r := range ranges {
		splitUTF8(r.lo, r.hi, func(lo, hi []byte) {
			if len(lo) == 1 {
				ascii.add(lo[0], hi[0])
				return
			}
			subs := make([]*expr, len(lo))
			for i := range lo {
				subs[i] = bytesExpr(lo[i], hi[i])
			}
			alts = append(alts, seq(subs...))
		})
	}
	if !ascii.empty() {
		alts = append([]*expr{{kind: exBytes, set: ascii}}, alts...)
	}
	if len(alts) == 0 {
		return &expr{kind: exAlt} // matches nothing
	}
	return alt(alts...)
}

// normalize sorts ranges, drops empty ones, clips them to valid code
// points and merges overlapping or adjacent ones.
func normalize(rs []runeRange) []runeRange {
	var out []runeRange
	for _, r := range rs {
		r.lo, r.hi = max(r.lo, 0), min(r.hi, utf8.MaxRune)
		if r.lo <= r.hi {
			out = append(out, r)
		}
	}
	for i := 1; i < len(out); i++ { // insertion sort: classes are short
		for j := i; j > 0 && out[j].lo < out[j-1].lo; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && r.lo <= merged[n-1].hi+1 {
			merged[n-1].hi = max(merged[n-1].hi, r.hi)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// complement is the code points in none of rs (normalized).
func complement(rs []runeRange) []runeRange {
	var out []runeRange
	next := rune(0)
	for _, r := range rs {
		if r.lo > next {
			out = append(out, runeRange{next, r.lo - 1})
		}
		next = r.hi + 1
	}
	if next <= utf8.MaxRune {
		out = append(out, runeRange{next, utf8.MaxRune})
	}
	return out
}

// splitUTF8 calls emit with the first and last encodings of runs of code
// points in lo..hi whose encodings are the byte ranges lo[i]..hi[i].
func splitUTF8(lo, hi rune, emit func(lo, hi []byte)) {
	if lo > hi {
		return
	}
	// Surrogates have no encoding.
	if lo < 0xD800 && hi > 0xDFFF {
		splitUTF8(lo, 0xD7FF, emit)
		splitUTF8(0xE000, hi, emit)
		return
	}
	if lo >= 0xD800 && lo <= 0xDFFF {
		lo = 0xE000
	}
	if hi >= 0xD800 && hi <= 0xDFFF {
		hi = 0xD7FF
	}
	if lo > hi {
		return
	}
	// One encoded length at a time.
	for _, m := range []rune{0x7F, 0x7FF, 0xFFFF} {
		if lo <= m && m < hi {
			splitUTF8(lo, m, emit)
			splitUTF8(m+1, hi, emit)
			return
		}
	}
	n := utf8.RuneLen(lo)
	// Split until every trailing byte position spans whole ranges.
	for i := 1; i < n; i++ {
		m := rune(1)<<(6*i) - 1
		if lo&^m != hi&^m {
			if lo&m != 0 {
				splitUTF8(lo, lo|m, emit)
				splitUTF8((lo|m)+1, hi, emit)
				return
			}
			if hi&m != m {
				splitUTF8(lo, hi&^m-1, emit)
				splitUTF8(hi&^m, hi, emit)
				return
			}
		}
	}
	a, b := make([]byte, 4), make([]byte, 4)
	emit(a[:utf8.EncodeRune(a, lo)], b[:utf8.EncodeRune(b, hi)])
}
