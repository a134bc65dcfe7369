package jpeg

import (
	"errors"
	"fmt"

	"github.com/medgemma/medgemma/imageproc/internal/imgerr"
)

// Lossless JPEG (ITU T.81 annex H, process 14), the compression of DICOM's
// "JPEG Lossless" transfer syntaxes (1.2.840.10008.1.2.4.57 and .70, the
// latter with predictor 1): each sample is predicted from its left, upper
// and upper-left neighbours and the Huffman-coded difference added, exactly,
// with 2 to 16 bits per sample.

// Lossless is a decoded lossless JPEG: W x H pixels of Components samples
// of Precision bits, interleaved per pixel, as the DICOM PixelData of the
// same image would hold them.
type Lossless struct {
	W, H, Components, Precision int
	Pix                         []uint16
}

// DecodeLossless decodes a lossless (SOF3) JPEG whose components are all in
// one scan and not subsampled, refusing more than maxPixels pixels from the
// header.
func DecodeLossless(data []byte, maxPixels int64) (*Lossless, error) {
	d := &decoder{segments: segments{data: data}}
	if err := d.start(); err != nil {
		return nil, err
	}
	var img *Lossless
	var ids []uint8
	for {
		marker, seg, err := d.next()
		if err != nil {
			return nil, err
		}
		switch marker {
		case markerEOI:
			return nil, errors.New("no image data before the EOI marker")
		case markerSOF3:
			if img != nil {
				return nil, errors.New("more than one SOF marker")
			}
			if img, ids, err = parseLosslessSOF(seg, maxPixels); err != nil {
				return nil, err
			}
		case markerSOF0, markerSOF1, markerSOF2, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, markerSOFF:
			return nil, fmt.Errorf("SOF marker 0x%02X: not a lossless (SOF3) JPEG", marker)
		case markerDHT, markerDQT, markerDRI, markerAPP14:
			if err := d.parseTables(marker, seg); err != nil {
				return nil, err
			}
		case markerSOS:
			if img == nil {
				return nil, errors.New("SOS before SOF")
			}
			if err := d.losslessScan(seg, img, ids); err != nil {
				return nil, err
			}
			return img, nil
		}
	}
}

func parseLosslessSOF(seg []byte, maxPixels int64) (*Lossless, []uint8, error) {
	if len(seg) < 6 {
		return nil, nil, errors.New("SOF segment too short")
	}
	img := &Lossless{Precision: int(seg[0]), H: int(seg[1])<<8 | int(seg[2]), W: int(seg[3])<<8 | int(seg[4]), Components: int(seg[5])}
	switch {
	case img.Precision < 2 || img.Precision > 16:
		return nil, nil, fmt.Errorf("lossless JPEG with %d-bit samples", img.Precision)
	case img.Components < 1 || img.Components > 4 || len(seg) != 6+3*img.Components:
		return nil, nil, fmt.Errorf("SOF segment has %d bytes for %d components", len(seg), img.Components)
	}
	if err := imgerr.CheckSize(img.W, img.H, maxPixels); err != nil {
		return nil, nil, err
	}
	ids := make([]uint8, img.Components)
	for i := range ids {
		ids[i] = seg[6+3*i]
		if seg[7+3*i] != 0x11 {
			return nil, nil, fmt.Errorf("component %d is subsampled (%dx%d); only 1x1 is supported", i, seg[7+3*i]>>4, seg[7+3*i]&15)
		}
	}
	img.Pix = make([]uint16, img.W*img.H*img.Components)
	return img, ids, nil
}

// losslessScan decodes the one scan of a lossless JPEG into img.
func (d *decoder) losslessScan(seg []byte, img *Lossless, ids []uint8) error {
	nc := img.Components
	if len(seg) != 4+2*nc || int(seg[0]) != nc {
		return errors.New("the scan must hold every component (one scan per component is not supported)")
	}
	tables := make([]*huffTable, nc)
	for i := range nc {
		if seg[1+2*i] != ids[i] {
			return errors.New("scan components are not in frame order")
		}
		td := int(seg[2+2*i] >> 4)
		if td > 3 || !d.dc[td].ok {
			return fmt.Errorf("scan component %d uses Huffman table %d, not defined", i, td)
		}
		tables[i] = &d.dc[td]
	}
	predictor, pt := int(seg[1+2*nc]), uint(seg[3+2*nc]&15)
	if predictor < 1 || predictor > 7 {
		return fmt.Errorf("predictor %d (1 to 7 for non-hierarchical lossless JPEG)", predictor)
	}
	if int(pt) >= img.Precision {
		return fmt.Errorf("point transform %d for %d-bit samples", pt, img.Precision)
	}
	d.bits = newBitReader(d.data, d.pos, d.restart)
	br := &d.bits
	w, h := img.W, img.H
	pix := img.Pix
	initial := 1 << (img.Precision - int(pt) - 1)
	// The first line of the scan and of each restart interval predicts from
	// the left only, its first sample from the middle of the range.
	firstRow, firstX := 0, 0
	for y := range h {
		for x := range w {
			if restarted, err := br.mcu(); err != nil {
				return err
			} else if restarted {
				firstRow, firstX = y, x
			}
			for c := range nc {
				i := (y*w+x)*nc + c
				var pred int
				switch {
				case y == firstRow && x == firstX:
					pred = initial
				case y == firstRow:
					pred = int(pix[i-nc])
				case x == 0:
					pred = int(pix[i-w*nc])
				default:
					ra, rb, rc := int(pix[i-nc]), int(pix[i-w*nc]), int(pix[i-w*nc-nc])
					switch predictor {
					case 1:
						pred = ra
					case 2:
						pred = rb
					case 3:
						pred = rc
					case 4:
						pred = ra + rb - rc
					case 5:
						pred = ra + (rb-rc)>>1
					case 6:
						pred = rb + (ra-rc)>>1
					default:
						pred = (ra + rb) >> 1
					}
				}
				s, err := br.decode(tables[c])
				if err != nil {
					return fmt.Errorf("row %d: %w", y, err)
				}
				var diff int
				switch {
				case s == 16:
					diff = 32768
				case s > 16:
					return fmt.Errorf("row %d: difference of %d bits", y, s)
				default:
					diff = int(br.receiveExtend(s))
				}
				pix[i] = uint16(pred + diff)
			}
		}
		if err := br.overrun(); err != nil {
			return fmt.Errorf("row %d: %w", y, err)
		}
	}
	if pt > 0 {
		for i, v := range pix {
			pix[i] = v << pt
		}
	}
	return nil
}
