package tokenizer

import "unicode/utf8"

// replacement is U+FFFD in UTF-8, what an invalid byte-fallback run becomes.
const replacement = "\uFFFD"

// Decode returns the text of ids: "▁" becomes a space and runs of byte-fallback
// tokens are reassembled into UTF-8; a run that is not valid UTF-8 as a whole
// becomes one U+FFFD per byte, as in the tokenizers library. With skipSpecial,
// special tokens (<bos>, <eos>, <start_of_turn>, <image_soft_token>, ...) are
// left out. Ids that name no token (the model's vocabulary is larger than the
// tokenizer's) are skipped, as transformers does.
func (t *Tokenizer) Decode(ids []int32, skipSpecial bool) string {
	return string(t.AppendDecode(nil, ids, skipSpecial))
}

// AppendDecode is Decode appending to dst.
func (t *Tokenizer) AppendDecode(dst []byte, ids []int32, skipSpecial bool) []byte {
	runStart := -1 // start in dst of the pending byte-fallback run
	for _, id := range ids {
		if !t.Valid(id) || (skipSpecial && t.flags[id]&flagSpecial != 0) {
			continue
		}
		if b := t.byteOf[id]; b >= 0 {
			if runStart < 0 {
				runStart = len(dst)
			}
			dst = append(dst, byte(b))
			continue
		}
		if runStart >= 0 {
			dst = fixRun(dst, runStart)
			runStart = -1
		}
		dst = append(dst, t.pieces[id]...)
	}
	if runStart >= 0 {
		dst = fixRun(dst, runStart)
	}
	return dst
}

// fixRun replaces dst[start:] by one U+FFFD per byte unless it is valid UTF-8.
func fixRun(dst []byte, start int) []byte {
	if utf8.Valid(dst[start:]) {
		return dst
	}
	n := len(dst) - start
	dst = dst[:start]
	for range n {
		dst = append(dst, replacement...)
	}
	return dst
}

// Valid reports whether id names a token.
func (t *Tokenizer) Valid(id int32) bool {
	return id >= 0 && int(id) < len(t.tokens) && t.tokens[id] != ""
}

// Token returns the text of token id as stored in the vocabulary ("▁the",
// "<0x0A>", "<start_of_turn>"), or "" when id names no token.
func (t *Tokenizer) Token(id int32) string {
	if !t.Valid(id) {
		return ""
	}
	return t.tokens[id]
}

// ID returns the id of a token given its vocabulary text, such as
// "<end_of_turn>".
func (t *Tokenizer) ID(token string) (int32, bool) {
	if id, ok := t.vocab[token]; ok {
		return id, true
	}
	if start, end, id, ok := t.added.find(token, 0); ok && start == 0 && end == len(token) {
		return id, true
	}
	return 0, false
}

// IsSpecial reports whether id is a special token (skipped by Decode with
// skipSpecial).
func (t *Tokenizer) IsSpecial(id int32) bool {
	return t.Valid(id) && t.flags[id]&flagSpecial != 0
}

// Len is one more than the largest token id: the size of the id space.
func (t *Tokenizer) Len() int { return len(t.tokens) }

// SpecialPrefix returns the ids that Encode with addSpecial puts before the
// text (for Gemma, <bos>).
func (t *Tokenizer) SpecialPrefix() []int32 { return append([]int32(nil), t.prefix...) }

// Bytes returns the bytes token id stands for: a byte-fallback token's one
// byte (possibly part of a UTF-8 character), else its text with "▁" as a
// space; nil when id names no token. OpenAI's logprobs report these, since
// a token's text alone cannot show a partial character.
func (t *Tokenizer) Bytes(id int32) []byte {
	if !t.Valid(id) {
		return nil
	}
	if b := t.byteOf[id]; b >= 0 {
		return []byte{byte(b)}
	}
	return []byte(t.pieces[id])
}
