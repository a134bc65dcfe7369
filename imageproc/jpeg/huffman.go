package jpeg

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// huffFastBits is how many bits the one-step lookup of a Huffman code covers;
// longer codes (rare: they belong to rare symbols) take a search by length.
const huffFastBits = 9

// huffTable is one JPEG Huffman table (ITU T.81 annex C and F.2.2.3).
type huffTable struct {
	ok bool
	// fast maps the next huffFastBits bits to length<<8 | symbol, 0 when the
	// code is longer.
	fast [1 << huffFastBits]uint16
	// fastAC maps the next huffFastBits bits, when they hold a whole AC
	// code and its value bits, to value<<8 | run<<4 | bits used; 0 otherwise.
	fastAC  [1 << huffFastBits]int32
	maxcode [17]int32 // largest code of each length, -1 for none
	valptr  [17]int32 // index in vals of the first code of each length, minus that code
	vals    [256]uint8
}

// build makes the canonical codes from the count of codes of each length and
// the symbols in code order.
func (t *huffTable) build(counts [16]int, symbols []uint8) error {
	*t = huffTable{}
	copy(t.vals[:], symbols)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		t.maxcode[l] = -1
		if n > 0 {
			t.valptr[l] = k - code
			for range n {
				if code >= 1<<l {
					return errors.New("more codes than fit their lengths")
				}
				if l <= huffFastBits {
					shift := huffFastBits - l
					for j := range int32(1) << shift {
						t.fast[code<<shift|j] = uint16(l<<8) | uint16(t.vals[k])
					}
				}
				code++
				k++
			}
			t.maxcode[l] = code - 1
		}
		code <<= 1
	}
	for i, e := range t.fast {
		l, rs := uint(e>>8), uint8(e)
		r, s := rs>>4, uint(rs&15)
		if e == 0 || s == 0 || l+s > huffFastBits {
			continue
		}
		bits := int32(i<<l) & (1<<huffFastBits - 1) >> (huffFastBits - s)
		t.fastAC[i] = extend(bits, s)<<8 | int32(r)<<4 | int32(l+s)
	}
	t.ok = true
	return nil
}

// extend maps s value bits v to the signed value they code (F.2.2.1).
func extend(v int32, s uint) int32 {
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// bitReader reads the entropy-coded data of a scan, most significant bit
// first, removing the stuffed zero after each 0xFF. At a marker or the end of
// the data it supplies zero bits, as libjpeg does, and remembers how many, so
// that reading into them is reported rather than decoded as garbage.
type bitReader struct {
	data   []byte
	pos    int
	acc    uint64 // the next n bits, left-aligned
	n      uint
	fake   uint // how many of the last bits in acc are made-up zeros
	marker bool // reached a marker or the end: only zeros from here
	// Restart intervals: every interval MCUs, marker RSTnext comes.
	interval, left, next int
}

// fill tops the accumulator up to more than 56 bits.
func (b *bitReader) fill() {
	if !b.marker && b.pos+8 <= len(b.data) {
		// Eight bytes at once when none is 0xFF: bytes that do not fit
		// whole are loaded in part now and again, identically, next time.
		x := binary.BigEndian.Uint64(b.data[b.pos:])
		if (^x-0x0101010101010101)&x&0x8080808080808080 == 0 {
			b.acc |= x >> b.n
			k := (64 - b.n) / 8
			b.pos += int(k)
			b.n += 8 * k
			return
		}
	}
	for b.n <= 56 {
		c := byte(0)
		switch {
		case b.marker:
			b.fake += 8
		case b.pos >= len(b.data):
			b.marker = true
			b.fake += 8
		case b.data[b.pos] != 0xFF:
			c = b.data[b.pos]
			b.pos++
		case b.pos+1 < len(b.data) && b.data[b.pos+1] == 0:
			c = 0xFF
			b.pos += 2
		default:
			b.marker = true // a marker: stay on it
			b.fake += 8
		}
		b.acc |= uint64(c) << (56 - b.n)
		b.n += 8
	}
}

// decode reads one Huffman-coded symbol. It leaves at least 15 bits in the
// accumulator for the value bits that follow.
func (b *bitReader) decode(t *huffTable) (uint8, error) {
	if b.n < 32 {
		b.fill()
	}
	if e := t.fast[b.acc>>(64-huffFastBits)]; e != 0 {
		l := uint(e >> 8)
		b.acc <<= l
		b.n -= l
		return uint8(e), nil
	}
	return b.decodeLong(t)
}

// decodeLong reads a code longer than huffFastBits.
func (b *bitReader) decodeLong(t *huffTable) (uint8, error) {
	for l := huffFastBits + 1; l <= 16; l++ {
		code := int32(b.acc >> (64 - l))
		if code <= t.maxcode[l] {
			b.acc <<= l
			b.n -= uint(l)
			return t.vals[(t.valptr[l]+code)&255], nil
		}
	}
	return 0, b.fail("invalid Huffman code")
}

// receiveExtend reads s value bits and maps them to the signed value they
// code (F.2.2.1).
func (b *bitReader) receiveExtend(s uint8) int32 {
	if s == 0 {
		return 0
	}
	v := int32(b.acc >> (64 - uint(s)))
	b.acc <<= s
	b.n -= uint(s)
	return extend(v, uint(s))
}

// overrun reports reading past the real data into the supplied zeros.
func (b *bitReader) overrun() error {
	if b.n >= b.fake {
		return nil
	}
	return b.fail("entropy-coded data ends early")
}

func (b *bitReader) fail(what string) error {
	if b.pos >= len(b.data) {
		return fmt.Errorf("truncated file: %s", what)
	}
	if b.marker && b.pos+1 < len(b.data) {
		return fmt.Errorf("%s (at marker 0x%02X, offset %d)", what, b.data[b.pos+1], b.pos)
	}
	return fmt.Errorf("%s (offset %d)", what, b.pos)
}

// newBitReader reads the entropy-coded data at pos, with a restart marker
// every interval MCUs (0: none).
func newBitReader(data []byte, pos, interval int) bitReader {
	return bitReader{data: data, pos: pos, interval: interval, left: interval}
}

// mcu is called before each MCU: at the end of a restart interval it reads
// the restart marker and reports true, and the caller resets its
// predictions.
func (b *bitReader) mcu() (bool, error) {
	if b.interval == 0 {
		return false, nil
	}
	restarted := b.left == 0
	if restarted {
		if err := b.restart(b.next); err != nil {
			return false, err
		}
		b.next, b.left = (b.next+1)&7, b.interval
	}
	b.left--
	return restarted, nil
}

// restart expects restart marker RSTm and starts the bit stream again after
// it.
func (b *bitReader) restart(m int) error {
	for b.pos < len(b.data) && b.data[b.pos] != 0xFF {
		b.pos++
	}
	for b.pos < len(b.data) && b.data[b.pos] == 0xFF {
		b.pos++
	}
	if b.pos >= len(b.data) {
		return errors.New("truncated file: missing restart marker")
	}
	if got := b.data[b.pos]; got != byte(0xD0+m) {
		return fmt.Errorf("expected restart marker RST%d, found marker 0x%02X (offset %d)", m, got, b.pos)
	}
	b.pos++
	b.acc, b.n, b.fake, b.marker = 0, 0, 0, false
	return nil
}

// bits reads n raw bits, n at most 16.
func (b *bitReader) bits(n uint) int32 {
	if b.n < n {
		b.fill()
	}
	v := int32(b.acc >> (64 - n))
	b.acc <<= n
	b.n -= n
	return v
}

// end returns the offset of the marker that follows the scan's data, past
// any bytes the decoding did not need, stuffed zeros and restart markers.
func (b *bitReader) end() int {
	pos := b.pos
	for pos < len(b.data) {
		if b.data[pos] != 0xFF {
			pos++
			continue
		}
		if pos+1 < len(b.data) && (b.data[pos+1] == 0 || b.data[pos+1] >= 0xD0 && b.data[pos+1] <= 0xD7) {
			pos += 2
			continue
		}
		break
	}
	return pos
}
