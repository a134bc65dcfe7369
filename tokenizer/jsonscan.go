package tokenizer

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a small forward-only JSON reader over a byte slice. tokenizer.json
// is 33 MB, almost all of it the vocabulary and the merges; encoding/json needs
// about 0.8 s to turn that into Go values, while reading the two big tables
// directly into the structures the tokenizer uses takes a fraction of that.
// Everything else in the file (small objects) is cut out with skipValue and
// handed to encoding/json.
type scanner struct {
	data []byte
	pos  int
	buf  []byte // scratch for unescaped strings
}

// errorf reports a malformed document with the byte offset where it went wrong.
func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", s.pos, fmt.Sprintf(format, args...))
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it, or 0 at the end.
func (s *scanner) peek() byte {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

func (s *scanner) expect(c byte) error {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end of input, expected %q", c)
	}
	if s.data[s.pos] != c {
		return s.errorf("expected %q, found %q", c, s.data[s.pos])
	}
	s.pos++
	return nil
}

// more reports whether a container continues after an element: it consumes a
// comma and returns true, or consumes the closing byte and returns false.
func (s *scanner) more(closing byte) (bool, error) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false, s.errorf("unexpected end of input, expected ',' or %q", closing)
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		return true, nil
	case closing:
		s.pos++
		return false, nil
	}
	return false, s.errorf("expected ',' or %q, found %q", closing, s.data[s.pos])
}

// open consumes the opening byte of a container and reports whether it is empty
// (in which case the closing byte is consumed too).
func (s *scanner) open(opening, closing byte) (empty bool, err error) {
	if err := s.expect(opening); err != nil {
		return false, err
	}
	if s.peek() == closing {
		s.pos++
		return true, nil
	}
	return false, nil
}

// str reads a string and returns its unescaped bytes. The result aliases either
// the input or the scanner's scratch buffer: it is valid until the next call.
func (s *scanner) str() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		if c == '"' {
			s.pos++
			return s.data[start : s.pos-1], nil
		}
		if c == '\\' {
			return s.strEscaped(start)
		}
		if c < 0x20 {
			return nil, s.errorf("control character in string")
		}
		s.pos++
	}
	return nil, s.errorf("unexpected end of input in string")
}

func (s *scanner) strEscaped(start int) ([]byte, error) {
	s.buf = append(s.buf[:0], s.data[start:s.pos]...)
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return s.buf, nil
		case c < 0x20:
			return nil, s.errorf("control character in string")
		case c != '\\':
			s.buf = append(s.buf, c)
			s.pos++
			continue
		}
		if s.pos+1 >= len(s.data) {
			break
		}
		e := s.data[s.pos+1]
		s.pos += 2
		switch e {
		case '"', '\\', '/':
			s.buf = append(s.buf, e)
		case 'b':
			s.buf = append(s.buf, '\b')
		case 'f':
			s.buf = append(s.buf, '\f')
		case 'n':
			s.buf = append(s.buf, '\n')
		case 'r':
			s.buf = append(s.buf, '\r')
		case 't':
			s.buf = append(s.buf, '\t')
		case 'u':
			r, err := s.hex4()
			if err != nil {
				return nil, err
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate must be followed by \uDC00-\uDFFF; anything else is
				// replaced by U+FFFD as encoding/json does.
				r2 := rune(-1)
				if s.pos+1 < len(s.data) && s.data[s.pos] == '\\' && s.data[s.pos+1] == 'u' {
					save := s.pos
					s.pos += 2
					if r2, err = s.hex4(); err != nil {
						return nil, err
					}
					if utf16.DecodeRune(r, r2) == utf8.RuneError {
						s.pos = save
						r2 = -1
					}
				}
				if r2 < 0 {
					r = utf8.RuneError
				} else {
					r = utf16.DecodeRune(r, r2)
				}
			}
			s.buf = utf8.AppendRune(s.buf, r)
		default:
			return nil, s.errorf("invalid escape \\%c in string", e)
		}
	}
	return nil, s.errorf("unexpected end of input in string")
}

func (s *scanner) hex4() (rune, error) {
	if s.pos+4 > len(s.data) {
		return 0, s.errorf("unexpected end of input in \\u escape")
	}
	v, err := strconv.ParseUint(string(s.data[s.pos:s.pos+4]), 16, 16)
	if err != nil {
		return 0, s.errorf("invalid \\u escape %q", s.data[s.pos:s.pos+4])
	}
	s.pos += 4
	return rune(v), nil
}

// int reads a non-negative integer that fits in an int32.
func (s *scanner) int() (int32, error) {
	s.skipSpace()
	start := s.pos
	var v int64
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		v = v*10 + int64(s.data[s.pos]-'0')
		if v > 1<<31-1 {
			return 0, s.errorf("integer out of range")
		}
		s.pos++
	}
	if s.pos == start {
		return 0, s.errorf("expected a non-negative integer")
	}
	return int32(v), nil
}

// skipValue consumes one JSON value of any kind and returns its raw bytes.
// Strings are checked for termination; numbers and literals are taken as the
// run of bytes up to the next delimiter and left for encoding/json to judge.
func (s *scanner) skipValue() ([]byte, error) {
	s.skipSpace()
	start := s.pos
	depth := 0
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch c {
		case '"':
			if _, err := s.str(); err != nil {
				return nil, err
			}
		case '{', '[':
			depth++
			s.pos++
		case '}', ']':
			if depth == 0 {
				if s.pos > start {
					return s.data[start:s.pos], nil // end of a scalar
				}
				return nil, s.errorf("unexpected %q", c)
			}
			depth--
			s.pos++
		case ',', ':', ' ', '\t', '\n', '\r':
			if depth == 0 {
				if s.pos == start {
					return nil, s.errorf("expected a value, found %q", c)
				}
				return s.data[start:s.pos], nil
			}
			s.pos++
		default:
			s.pos++
		}
		if depth == 0 && s.pos > start && (c == '"' || c == '}' || c == ']') {
			return s.data[start:s.pos], nil
		}
	}
	if depth != 0 || s.pos == start {
		return nil, s.errorf("unexpected end of input")
	}
	return s.data[start:s.pos], nil
}
