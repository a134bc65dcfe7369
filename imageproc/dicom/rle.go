package dicom

import (
	"encoding/binary"
	"fmt"
)

// DICOM RLE Lossless (PS3.5 annex G, transfer syntax 1.2.840.10008.1.2.5):
// a 64-byte header of segment offsets, then one PackBits-compressed segment
// per byte plane: for each sample, its most significant byte first.

// decodeRLE decodes one RLE frame into the native layout nativeSamples
// reads: []uint8, []uint16 or []uint32 by BitsAllocated, samples
// interleaved per pixel.
func decodeRLE(data []byte, di *Info) (any, error) {
	if len(data) < 64 {
		return nil, fmt.Errorf("RLE frame of %d bytes has no 64-byte header", len(data))
	}
	bytesPer := di.BitsAllocated / 8
	want := di.Samples * bytesPer
	n := int(binary.LittleEndian.Uint32(data))
	if n != want {
		return nil, fmt.Errorf("RLE frame has %d segments; %d samples of %d bits need %d", n, di.Samples, di.BitsAllocated, want)
	}
	pixels := di.Rows * di.Columns
	planes := make([][]byte, n)
	for s := range n {
		start := int(binary.LittleEndian.Uint32(data[4+4*s:]))
		end := len(data)
		if s+1 < n {
			end = int(binary.LittleEndian.Uint32(data[8+4*s:]))
		}
		if start < 64 || start > end || end > len(data) {
			return nil, fmt.Errorf("RLE segment %d spans bytes %d-%d of a %d-byte frame", s, start, end, len(data))
		}
		p, err := unpackBits(data[start:end], pixels)
		if err != nil {
			return nil, fmt.Errorf("RLE segment %d: %w", s, err)
		}
		planes[s] = p
	}
	count := pixels * di.Samples
	switch bytesPer {
	case 1:
		out := make([]uint8, count)
		for s, p := range planes {
			for i, v := range p {
				out[i*di.Samples+s] = v
			}
		}
		return out, nil
	case 2:
		out := make([]uint16, count)
		for s := range di.Samples {
			hi, lo := planes[2*s], planes[2*s+1]
			for i := range pixels {
				out[i*di.Samples+s] = uint16(hi[i])<<8 | uint16(lo[i])
			}
		}
		return out, nil
	default:
		out := make([]uint32, count)
		for s := range di.Samples {
			b := planes[4*s : 4*s+4]
			for i := range pixels {
				out[i*di.Samples+s] = uint32(b[0][i])<<24 | uint32(b[1][i])<<16 | uint32(b[2][i])<<8 | uint32(b[3][i])
			}
		}
		return out, nil
	}
}

// unpackBits expands a PackBits segment to exactly n bytes: a header byte h
// copies the next h+1 bytes (h 0..127), repeats the next byte 1-h times (h
// -1..-127), or does nothing (-128). Segments are padded to even lengths,
// so bytes after the n-th are ignored.
func unpackBits(src []byte, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	for i := 0; i < len(src) && len(out) < n; {
		h := int(int8(src[i]))
		i++
		switch {
		case h >= 0:
			if i+h+1 > len(src) || len(out)+h+1 > n {
				return nil, fmt.Errorf("literal run of %d bytes overruns the segment or the frame", h+1)
			}
			out = append(out, src[i:i+h+1]...)
			i += h + 1
		case h != -128:
			if i >= len(src) || len(out)+1-h > n {
				return nil, fmt.Errorf("repeat run of %d bytes overruns the segment or the frame", 1-h)
			}
			for range 1 - h {
				out = append(out, src[i])
			}
			i++
		}
	}
	if len(out) != n {
		return nil, fmt.Errorf("decodes to %d bytes, the frame has %d pixels", len(out), n)
	}
	return out, nil
}
