package tokenizer

import "unicode/utf8"

// StreamDecoder turns generated ids into text one id at a time. Text is
// released as soon as its UTF-8 is complete: a character split across
// byte-fallback tokens comes out whole once its last byte arrives.
//
// The concatenated output equals Decode of all the ids, except where the model
// produces byte-fallback runs that are not valid UTF-8: Decode turns every byte
// of such a run into U+FFFD (it sees the whole run), while the stream has
// already released the valid characters before the bad byte and marks only the
// bytes that cannot form a character. That is what transformers' streaming does
// too.
//
// A StreamDecoder is not safe for concurrent use; it allocates nothing once its
// buffer has grown to the longest run.
type StreamDecoder struct {
	t           *Tokenizer
	skipSpecial bool
	pending     []byte // bytes of an incomplete UTF-8 character
}

// NewStreamDecoder returns a decoder; with skipSpecial, special tokens produce
// no text.
func (t *Tokenizer) NewStreamDecoder(skipSpecial bool) *StreamDecoder {
	return &StreamDecoder{t: t, skipSpecial: skipSpecial, pending: make([]byte, 0, utf8.UTFMax)}
}

// Append appends the text that id completes to dst.
func (d *StreamDecoder) Append(dst []byte, id int32) []byte {
	t := d.t
	if !t.Valid(id) || (d.skipSpecial && t.flags[id]&flagSpecial != 0) {
		return dst
	}
	b := t.byteOf[id]
	if b < 0 {
		return append(d.Flush(dst), t.pieces[id]...)
	}
	d.pending = append(d.pending, byte(b))
	p := d.pending
	for len(p) > 0 {
		r, n := utf8.DecodeRune(p)
		if r == utf8.RuneError && n <= 1 {
			if !utf8.FullRune(p) {
				break // wait for more bytes
			}
			dst = append(dst, replacement...)
		} else {
			dst = append(dst, p[:n]...)
		}
		p = p[n:]
	}
	d.pending = append(d.pending[:0], p...)
	return dst
}

// Flush appends what is left at the end of generation: an incomplete
// character becomes one U+FFFD per byte.
func (d *StreamDecoder) Flush(dst []byte) []byte {
	for range d.pending {
		dst = append(dst, replacement...)
	}
	d.pending = d.pending[:0]
	return dst
}

// Reset drops any pending bytes, for reuse on a new sequence.
func (d *StreamDecoder) Reset() { d.pending = d.pending[:0] }
