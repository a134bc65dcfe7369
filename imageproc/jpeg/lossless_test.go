package jpeg

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// encodeLossless writes a one-component lossless JPEG (process 14) with a
// restart every restart pixels (0 for none): a small encoder for the tests,
// with one Huffman table giving every difference category a 5-bit code.
func encodeLossless(pix []uint16, w, h, precision, predictor, restart int) []byte {
	var out bytes.Buffer
	seg := func(marker byte, body ...byte) {
		out.Write([]byte{0xFF, marker, byte((len(body) + 2) >> 8), byte(len(body) + 2)})
		out.Write(body)
	}
	out.Write([]byte{0xFF, 0xD8})
	seg(0xC3, byte(precision), byte(h>>8), byte(h), byte(w>>8), byte(w), 1, 1, 0x11, 0)
	dht := []byte{0x00, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	for s := range 17 {
		dht = append(dht, byte(s))
	}
	seg(0xC4, dht...)
	if restart > 0 {
		seg(0xDD, byte(restart>>8), byte(restart))
	}
	seg(0xDA, 1, 1, 0x00, byte(predictor), 0, 0)
	var acc uint64
	var n uint
	put := func(v uint64, bits uint) {
		acc, n = acc<<bits|v&(1<<bits-1), n+bits
		for n >= 8 {
			b := byte(acc >> (n - 8))
			out.WriteByte(b)
			if b == 0xFF {
				out.WriteByte(0)
			}
			n -= 8
		}
	}
	firstRow, firstX, left, rst := 0, 0, restart, 0
	for y := range h {
		for x := range w {
			if restart > 0 && left == 0 {
				if n > 0 {
					put(1<<(8-n)-1, 8-n) // pad with ones
				}
				out.Write([]byte{0xFF, byte(0xD0 + rst)})
				rst, left = (rst+1)&7, restart
				firstRow, firstX = y, x
			}
			left--
			i := y*w + x
			var pred int
			switch {
			case y == firstRow && x == firstX:
				pred = 1 << (precision - 1)
			case y == firstRow:
				pred = int(pix[i-1])
			case x == 0:
				pred = int(pix[i-w])
			default:
				ra, rb, rc := int(pix[i-1]), int(pix[i-w]), int(pix[i-w-1])
				pred = []int{0, ra, rb, rc, ra + rb - rc, ra + (rb-rc)>>1, rb + (ra-rc)>>1, (ra + rb) >> 1}[predictor]
			}
			diff := int(int16(uint16(int(pix[i]) - pred)))
			s, mag := uint(0), diff
			if mag < 0 {
				mag = -mag
			}
			for mag>>s != 0 {
				s++
			}
			put(uint64(s), 5)
			if s > 0 && s < 16 {
				if diff < 0 {
					diff += 1<<s - 1
				}
				put(uint64(diff), s)
			}
		}
	}
	if n > 0 {
		put(1<<(8-n)-1, 8-n)
	}
	out.Write([]byte{0xFF, 0xD9})
	return out.Bytes()
}

// TestJPEGLosslessRoundTrip encodes random images of 2 to 16 bits with every
// predictor, with and without restart intervals (a row, and several rows),
// and decodes them back exactly.
func TestJPEGLosslessRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	w, h := 37, 23
	for _, precision := range []int{2, 8, 12, 16} {
		for predictor := 1; predictor <= 7; predictor++ {
			for _, restart := range []int{0, w, 3 * w} {
				pix := make([]uint16, w*h)
				for i := range pix {
					// Smooth with noise, and some extremes.
					v := (i%w)*700 + (i/w)*300 + rng.IntN(2000)
					if rng.IntN(20) == 0 {
						v = rng.IntN(1 << 16)
					}
					pix[i] = uint16(v) & (1<<precision - 1)
				}
				data := encodeLossless(pix, w, h, precision, predictor, restart)
				img, err := DecodeLossless(data, 1<<20)
				if err != nil {
					t.Fatalf("P=%d predictor %d restart %d: %v", precision, predictor, restart, err)
				}
				if !slices.Equal(img.Pix, pix) {
					t.Fatalf("P=%d predictor %d restart %d: decoded samples differ", precision, predictor, restart)
				}
			}
		}
	}
}
