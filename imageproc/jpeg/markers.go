package jpeg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Marker codes (ITU T.81 table B.1), the byte after 0xFF.
const (
	markerTEM   = 0x01 // temporary private use, stands alone
	markerSOF0  = 0xC0 // baseline DCT
	markerSOF1  = 0xC1 // extended sequential DCT, Huffman
	markerSOF2  = 0xC2 // progressive DCT, Huffman
	markerSOF3  = 0xC3 // lossless, Huffman
	markerDHT   = 0xC4 // Huffman tables
	markerJPG   = 0xC8 // reserved for extensions (not a frame)
	markerSOFF  = 0xCF // last SOF code: differential and arithmetic-coded frames are C5-C7, C9-CB, CD-CF
	markerDAC   = 0xCC // arithmetic conditioning (not a frame)
	markerRST0  = 0xD0 // restart markers RST0..RST7, stand alone
	markerRST7  = 0xD7
	markerSOI   = 0xD8 // start of image
	markerEOI   = 0xD9 // end of image
	markerSOS   = 0xDA // start of scan
	markerDQT   = 0xDB // quantization tables
	markerDRI   = 0xDD // restart interval
	markerAPP1  = 0xE1 // application data: Exif
	markerAPP14 = 0xEE // application data: Adobe's colour transform
)

// isSOF reports whether a marker starts a frame (any process).
func isSOF(m byte) bool {
	return m >= markerSOF0 && m <= markerSOFF && m != markerDHT && m != markerJPG && m != markerDAC
}

// segments walks the marker segments of a JPEG stream, as libjpeg does:
// bytes between segments are skipped, runs of 0xFF are fill. Every reader
// of a JPEG's structure (the decoders, Config, Exif) goes through it.
type segments struct {
	data []byte
	pos  int
}

// start checks the SOI marker.
func (s *segments) start() error {
	if len(s.data) < 2 || s.data[0] != 0xFF || s.data[1] != markerSOI {
		return errors.New("missing SOI marker")
	}
	s.pos = 2
	return nil
}

// next returns the next marker that carries a segment, and the segment,
// skipping markers that stand alone; EOI comes back with no segment. After
// SOS, s.pos is at the scan's entropy-coded data.
func (s *segments) next() (byte, []byte, error) {
	for {
		marker, err := s.nextMarker()
		if err != nil {
			return 0, nil, err
		}
		switch {
		case marker == markerSOI || marker == markerTEM || marker >= markerRST0 && marker <= markerRST7:
			continue
		case marker == markerEOI:
			return marker, nil, nil
		}
		seg, err := s.segment(marker)
		return marker, seg, err
	}
}

// nextMarker skips to the next marker and returns its code.
func (s *segments) nextMarker() (byte, error) {
	for s.pos < len(s.data) && s.data[s.pos] != 0xFF {
		s.pos++ // libjpeg skips garbage between segments too
	}
	for s.pos < len(s.data) && s.data[s.pos] == 0xFF {
		s.pos++ // fill bytes
	}
	if s.pos >= len(s.data) {
		return 0, errors.New("truncated file: no EOI or image data")
	}
	m := s.data[s.pos]
	s.pos++
	return m, nil
}

// segment returns the payload of the marker segment at s.pos.
func (s *segments) segment(marker byte) ([]byte, error) {
	if s.pos+2 > len(s.data) {
		return nil, fmt.Errorf("truncated file in marker 0x%02X", marker)
	}
	n := int(binary.BigEndian.Uint16(s.data[s.pos:]))
	if n < 2 || s.pos+n > len(s.data) {
		return nil, fmt.Errorf("marker 0x%02X segment length %d runs past the end of the file", marker, n)
	}
	seg := s.data[s.pos+2 : s.pos+n]
	s.pos += n
	return seg, nil
}

// Config reads a JPEG's dimensions from its frame header, for any frame
// type and sampling (image/jpeg's DecodeConfig refuses some ratios).
func Config(data []byte) (w, h int, err error) {
	s := &segments{data: data}
	if err := s.start(); err != nil {
		return 0, 0, err
	}
	for {
		marker, seg, err := s.next()
		switch {
		case err != nil:
			return 0, 0, err
		case marker == markerEOI || marker == markerSOS:
			return 0, 0, errors.New("no frame header (SOF marker) before the image data")
		case isSOF(marker):
			if len(seg) < 6 {
				return 0, 0, errors.New("SOF segment too short")
			}
			return int(binary.BigEndian.Uint16(seg[3:])), int(binary.BigEndian.Uint16(seg[1:])), nil
		}
	}
}

// Exif returns the TIFF structure of a JPEG's first APP1 Exif segment
// before the image data, or nil.
func Exif(data []byte) []byte {
	s := &segments{data: data}
	if s.start() != nil {
		return nil
	}
	for {
		marker, seg, err := s.next()
		if err != nil || marker == markerSOS || marker == markerEOI {
			return nil
		}
		if marker == markerAPP1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return seg
		}
	}
}
