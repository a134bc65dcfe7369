package tokenizer

import (
	"bytes"
	"strings"
	"sync"
	"unicode/utf8"
)

// Encode returns the token ids of text. With addSpecial the post-processor's
// tokens are added (for Gemma, a leading <bos>), as transformers'
// add_special_tokens=True does. Special-token text such as "<start_of_turn>"
// in text maps to its single id. Invalid UTF-8 is encoded byte by byte through
// byte fallback.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int32 {
	return t.AppendEncode(nil, text, addSpecial)
}

// AppendEncode is Encode appending to dst.
func (t *Tokenizer) AppendEncode(dst []int32, text string, addSpecial bool) []int32 {
	if addSpecial {
		dst = append(dst, t.prefix...)
	}
	st := encodeStates.Get().(*encodeState)
	for pos := 0; pos < len(text); {
		start, end, id, found := t.added.find(text, pos)
		if !found {
			start, end = len(text), len(text)
		}
		if start > pos {
			dst = t.encodePlain(dst, text[pos:start], st)
		}
		if found {
			dst = append(dst, id)
		}
		pos = end
	}
	encodeStates.Put(st)
	if addSpecial {
		dst = append(dst, t.suffix...)
	}
	return dst
}

// encodeState is scratch space reused across calls.
type encodeState struct {
	norm             []byte
	syms, ranks, ids []int32
}

var encodeStates = sync.Pool{New: func() any { return new(encodeState) }}

// encodePlain encodes text that holds no added token: normalize, cut into
// pieces no merge can cross, BPE each piece.
func (t *Tokenizer) encodePlain(dst []int32, text string, st *encodeState) []int32 {
	norm := st.norm[:0]
	if t.replaceFrom != "" {
		for {
			i := strings.Index(text, t.replaceFrom)
			if i < 0 {
				break
			}
			norm = append(append(norm, text[:i]...), t.replaceTo...)
			text = text[i+len(t.replaceFrom):]
		}
	}
	norm = append(norm, text...)
	st.norm = norm

	to := t.replaceToBytes
	start := 0
	prevTo, prevGlue := false, false
	for i := 0; i < len(norm); {
		if len(to) > 0 && bytes.HasPrefix(norm[i:], to) {
			if i > start && !prevTo && !prevGlue {
				dst = t.encodeWord(dst, norm[start:i], st)
				start = i
			}
			i += len(to)
			prevTo, prevGlue = true, false
			continue
		}
		r, n := utf8.DecodeRune(norm[i:])
		i += n
		prevTo, prevGlue = false, t.glue[r]
	}
	if start < len(norm) {
		dst = t.encodeWord(dst, norm[start:], st)
	}
	return dst
}

// smallWord is the symbol count up to which mergeSmall beats mergeHeap.
const smallWord = 24

func (t *Tokenizer) encodeWord(dst []int32, word []byte, st *encodeState) []int32 {
	cacheable := len(word) <= cacheMaxWordLen
	if cacheable {
		if ids, ok := t.cache.get(word); ok {
			return append(dst, ids...)
		}
	}
	syms := t.symbols(st.syms[:0], word)
	st.syms = syms
	if len(syms) <= smallWord {
		if cap(st.ranks) < len(syms) {
			st.ranks = make([]int32, len(syms))
			st.ids = make([]int32, len(syms))
		}
		syms = t.mergeSmall(syms, st.ranks[:len(syms)], st.ids[:len(syms)])
	} else {
		syms = t.mergeHeap(syms)
	}
	if cacheable {
		t.cache.put(word, append([]int32(nil), syms...))
	}
	return append(dst, syms...)
}
