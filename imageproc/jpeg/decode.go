package jpeg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"

	"github.com/medgemma/medgemma/imageproc/internal/imgerr"
)

// ErrNotHandled marks a valid JPEG this decoder leaves to another: Decode
// hands such files to image/jpeg; Decode12 returns it for a stream that is
// not 12-bit sequential (an 8-bit one goes to Decode).
var ErrNotHandled = errors.New("jpeg: not a JPEG this decoder handles")

// Decode decodes a JPEG, refusing from the header an image of more than
// maxPixels pixels (an error of the kind imageproc.ErrTooLarge). Baseline
// and progressive Huffman files with 8-bit samples are decoded here as
// libjpeg decodes them, to *image.Gray, *image.YCbCr (or *SampledYCbCr for
// chroma ratios image.YCbCr has no name for), *image.RGBA (components R, G,
// B) or *image.CMYK (Adobe); other processes go to image/jpeg.
func Decode(data []byte, maxPixels int64) (image.Image, error) {
	w, h, err := Config(data)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if err := imgerr.CheckSize(w, h, maxPixels); err != nil {
		return nil, err
	}
	m, err := decodeLibjpeg(data)
	if errors.Is(err, ErrNotHandled) {
		return jpeg.Decode(bytes.NewReader(data))
	}
	return m, err
}

// component is one colour component of a frame.
type component struct {
	id     uint8
	h, v   int // sampling factors
	tq     int // quantization table
	td, ta int // Huffman tables of the scan: DC, AC
	pix    []uint8
	pix16  []uint16 // 12-bit samples instead of pix
	stride int      // samples per row of pix; pix is padded to whole blocks per MCU
	pred   int32
	// Progressive files keep every block's coefficients (zigzag-decoded to
	// natural order, not dequantized) until the last scan, with the
	// quantization table latched at the component's first scan, as libjpeg
	// does.
	coef  []int16
	nz    []uint64   // per block, the zigzag positions of nonzero AC coefficients
	quant *[64]int32 // nil until the component's first scan
}

// decoder holds the state of one decode.
type decoder struct {
	segments
	width, height int
	comps         []component
	quant         [4][64]int32 // natural order
	quantSet      [4]bool
	dc, ac        [4]huffTable
	restart       int  // restart interval in MCUs, 0 for none
	adobe         bool // an Adobe APP14 marker, whose transform says the colour space
	transform     byte // its transform: 0 none (RGB, CMYK), 1 YCbCr, 2 YCCK
	lateAdobe     bool // the marker came after the frame header
	rgb           bool // three components that are R, G, B, not Y, Cb, Cr
	bits          bitReader
	progressive   bool
	eobrun        int  // progressive AC scans: blocks left in an end-of-band run
	allow12       bool // decode 12-bit samples (gray, sequential) into pix16
	twelve        bool
	mx, my        int // MCUs per row and column
}

// decodeLibjpeg decodes what this package handles, without a size check.
func decodeLibjpeg(data []byte) (image.Image, error) {
	return (&decoder{segments: segments{data: data}}).decode()
}

// Decode12 decodes a grayscale sequential JPEG of 12-bit samples (DICOM's
// "JPEG Extended" transfer syntax) into w x h samples, refusing more than
// maxPixels pixels from the header.
func Decode12(data []byte, maxPixels int64) (w, h int, pix []uint16, err error) {
	if w, h, err := Config(data); err != nil {
		return 0, 0, nil, fmt.Errorf("header: %w", err)
	} else if err := imgerr.CheckSize(w, h, maxPixels); err != nil {
		return 0, 0, nil, err
	}
	d := &decoder{segments: segments{data: data}, allow12: true}
	if _, err := d.decode(); err != nil {
		return 0, 0, nil, err
	}
	c := d.comps[0]
	pix = make([]uint16, 0, d.width*d.height)
	for y := range d.height {
		pix = append(pix, c.pix16[y*c.stride:y*c.stride+d.width]...)
	}
	return d.width, d.height, pix, nil
}

func (d *decoder) decode() (image.Image, error) {
	if err := d.start(); err != nil {
		return nil, err
	}
	for {
		marker, seg, err := d.next()
		if err != nil {
			return nil, err
		}
		if marker == markerEOI {
			if d.progressive && d.comps != nil && d.comps[0].coef != nil {
				d.finishProgressive()
				return d.image(), nil
			}
			return nil, errors.New("no image data before the EOI marker")
		}
		switch marker {
		case markerSOF0, markerSOF1, markerSOF2:
			d.progressive = marker == markerSOF2
			if err := d.parseSOF(seg); err != nil {
				return nil, err
			}
		case markerSOF3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, markerSOFF: // lossless, differential, arithmetic
			return nil, ErrNotHandled
		case markerDHT, markerDQT, markerDRI, markerAPP14:
			if err := d.parseTables(marker, seg); err != nil {
				return nil, err
			}
		case markerSOS:
			if d.progressive {
				if err := d.progressiveScan(seg); err != nil {
					return nil, err
				}
				continue
			}
			if err := d.parseSOS(seg); err != nil {
				return nil, err
			}
			if err := d.scan(); err != nil {
				return nil, err
			}
			return d.image(), nil
		}
	}
}

// parseTables reads the segments that set up decoding for the scans that
// follow, whatever the frame type: Huffman tables (DHT), quantization tables
// (DQT), the restart interval (DRI) and Adobe's colour transform (APP14).
func (d *decoder) parseTables(marker byte, seg []byte) error {
	switch marker {
	case markerDHT:
		return d.parseDHT(seg)
	case markerDQT:
		return d.parseDQT(seg)
	case markerDRI:
		if len(seg) != 2 {
			return fmt.Errorf("DRI segment has %d bytes, want 2", len(seg))
		}
		d.restart = int(binary.BigEndian.Uint16(seg))
	case markerAPP14: // an Adobe transform flag changes the colour space
		if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
			d.adobe, d.transform = true, seg[11]
			d.lateAdobe = d.comps != nil
		}
	}
	return nil
}

func (d *decoder) parseSOF(seg []byte) error {
	if d.comps != nil {
		return errors.New("more than one SOF marker")
	}
	if len(seg) < 6 {
		return errors.New("SOF segment too short")
	}
	switch {
	case d.allow12 && (seg[0] != 12 || d.progressive):
		return ErrNotHandled // not sequential 12-bit: decodeJPEGAny's
	case d.allow12:
		d.twelve = true
	case seg[0] != 8:
		return ErrNotHandled // 12-bit samples
	}
	d.height = int(binary.BigEndian.Uint16(seg[1:]))
	d.width = int(binary.BigEndian.Uint16(seg[3:]))
	n := int(seg[5])
	if d.width == 0 || d.height == 0 {
		if d.height == 0 && d.width > 0 {
			return ErrNotHandled // height from a DNL marker
		}
		return fmt.Errorf("image has no pixels (%dx%d)", d.width, d.height)
	}
	if len(seg) != 6+3*n {
		return fmt.Errorf("SOF segment has %d bytes for %d components", len(seg), n)
	}
	// The colour space as libjpeg decides it (jdapimin.c): an Adobe
	// marker's transform, else component ids R, G, B mean RGB, else YCbCr.
	switch {
	case d.twelve && n != 1:
		return imgerr.With(imgerr.ErrUnsupported, fmt.Errorf("12-bit JPEG with %d components (only grayscale is supported)", n))
	case n == 1:
	case n == 3 && d.adobe:
		if d.transform > 1 {
			return ErrNotHandled
		}
		d.rgb = d.transform == 0
	case n == 3:
		d.rgb = string([]byte{seg[6], seg[9], seg[12]}) == "RGB"
	case n == 4 && d.adobe && d.transform == 0:
		// Adobe CMYK, as Photoshop and PIL write it.
	default:
		return ErrNotHandled // YCCK, or an unusual component count
	}
	d.comps = make([]component, n)
	for i := range d.comps {
		c := &d.comps[i]
		b := seg[6+3*i:]
		c.id, c.h, c.v, c.tq = b[0], int(b[1]>>4), int(b[1]&15), int(b[2])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return fmt.Errorf("component %d has sampling factors %dx%d", i, c.h, c.v)
		}
		if c.tq > 3 {
			return fmt.Errorf("component %d uses quantization table %d", i, c.tq)
		}
		for j := range i {
			if d.comps[j].id == c.id {
				return fmt.Errorf("component id %d appears twice", c.id)
			}
		}
	}
	if n == 1 {
		d.comps[0].h, d.comps[0].v = 1, 1 // one component: one block per MCU
		return nil
	}
	if n == 4 || d.rgb {
		for _, c := range d.comps {
			if c.h != d.comps[0].h || c.v != d.comps[0].v {
				return ErrNotHandled // subsampled CMYK or RGB
			}
		}
		return nil
	}
	// Y must carry the largest factors and both chroma components the same,
	// in a ratio image.YCbCr can hold.
	y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
	if cb.h != cr.h || cb.v != cr.v || y.h%cb.h != 0 || y.v%cb.v != 0 {
		return ErrNotHandled
	}
	return nil
}

// subsampleRatio maps chroma subsampling factors to image.YCbCr's ratios,
// -1 for those it has none for.
func subsampleRatio(hs, vs int) image.YCbCrSubsampleRatio {
	switch [2]int{hs, vs} {
	case [2]int{1, 1}:
		return image.YCbCrSubsampleRatio444
	case [2]int{2, 1}:
		return image.YCbCrSubsampleRatio422
	case [2]int{2, 2}:
		return image.YCbCrSubsampleRatio420
	case [2]int{1, 2}:
		return image.YCbCrSubsampleRatio440
	case [2]int{4, 1}:
		return image.YCbCrSubsampleRatio411
	case [2]int{4, 2}:
		return image.YCbCrSubsampleRatio410
	}
	return -1
}

func (d *decoder) parseDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if tq > 3 || pq > 1 {
			return fmt.Errorf("DQT table %d with precision %d", tq, pq)
		}
		n := 64 * (1 + int(pq))
		if len(seg) < 1+n {
			return errors.New("DQT segment too short")
		}
		for k := range 64 {
			v := int32(seg[1+k])
			if pq == 1 {
				v = int32(binary.BigEndian.Uint16(seg[1+2*k:]))
			}
			d.quant[tq][zigzag[k]] = v
		}
		d.quantSet[tq] = true
		seg = seg[1+n:]
	}
	return nil
}

func (d *decoder) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return errors.New("DHT segment too short")
		}
		tc, th := seg[0]>>4, int(seg[0]&15)
		if tc > 1 || th > 3 {
			return fmt.Errorf("DHT table class %d id %d", tc, th)
		}
		var counts [16]int
		total := 0
		for i := range 16 {
			counts[i] = int(seg[1+i])
			total += counts[i]
		}
		if total > 256 || len(seg) < 17+total {
			return errors.New("DHT segment too short for its code counts")
		}
		t := &d.dc[th]
		if tc == 1 {
			t = &d.ac[th]
		}
		if err := t.build(counts, seg[17:17+total]); err != nil {
			return fmt.Errorf("DHT table class %d id %d: %w", tc, th, err)
		}
		seg = seg[17+total:]
	}
	return nil
}

func (d *decoder) parseSOS(seg []byte) error {
	if d.comps == nil {
		return errors.New("SOS before SOF")
	}
	if d.lateAdobe {
		return ErrNotHandled // an Adobe marker after the frame header
	}
	if len(seg) < 1 {
		return errors.New("SOS segment too short")
	}
	n := int(seg[0])
	if len(seg) != 4+2*n {
		return fmt.Errorf("SOS segment has %d bytes for %d components", len(seg), n)
	}
	if n != len(d.comps) {
		return ErrNotHandled // one scan per component
	}
	for i := range n {
		id, tables := seg[1+2*i], seg[2+2*i]
		c := &d.comps[i]
		if c.id != id {
			return ErrNotHandled // components in another order
		}
		c.td, c.ta = int(tables>>4), int(tables&15)
		if c.td > 3 || c.ta > 3 || !d.dc[c.td].ok || !d.ac[c.ta].ok {
			return fmt.Errorf("scan component %d uses Huffman tables %d/%d, not defined", i, c.td, c.ta)
		}
		if !d.quantSet[c.tq] {
			return fmt.Errorf("component %d uses quantization table %d, not defined", i, c.tq)
		}
	}
	ss, se, a := seg[1+2*n], seg[2+2*n], seg[3+2*n]
	if ss != 0 || se != 63 || a != 0 {
		return fmt.Errorf("baseline scan with spectral selection %d-%d, approximation %d", ss, se, a)
	}
	return nil
}

// allocate sizes the MCU grid and the component planes, padded to whole
// MCUs (one block per MCU for a single component).
func (d *decoder) allocate() {
	hmax, vmax := 1, 1
	for _, c := range d.comps {
		hmax, vmax = max(hmax, c.h), max(vmax, c.v)
	}
	d.mx, d.my = (d.width+8*hmax-1)/(8*hmax), (d.height+8*vmax-1)/(8*vmax)
	for i := range d.comps {
		c := &d.comps[i]
		c.stride = d.mx * c.h * 8
		if d.twelve {
			c.pix16 = make([]uint16, c.stride*d.my*c.v*8)
		} else {
			c.pix = make([]uint8, c.stride*d.my*c.v*8)
		}
	}
}

// scan decodes the entropy-coded data of the one scan into the planes.
func (d *decoder) scan() error {
	d.allocate()
	mx, my := d.mx, d.my
	d.bits = newBitReader(d.data, d.pos, d.restart)
	var blk [64]int32
	for y := range my {
		for x := range mx {
			if restarted, err := d.bits.mcu(); err != nil {
				return err
			} else if restarted {
				for i := range d.comps {
					d.comps[i].pred = 0
				}
			}
			for i := range d.comps {
				c := &d.comps[i]
				q := &d.quant[c.tq]
				for v := range c.v {
					for h := range c.h {
						last, err := d.block(&blk, c, q)
						if err != nil {
							return fmt.Errorf("MCU %d of %d: %w", y*mx+x, mx*my, err)
						}
						off := (y*c.v+v)*8*c.stride + (x*c.h+h)*8
						if d.twelve {
							idctIslow12(c.pix16[off:], c.stride, &blk)
						} else {
							idctIslow(c.pix[off:], c.stride, &blk, last)
						}
						blk = [64]int32{}
					}
				}
			}
		}
	}
	return nil
}

// block Huffman-decodes one block into blk (natural order, dequantized) and
// returns the zigzag index of its last nonzero coefficient.
func (d *decoder) block(blk *[64]int32, c *component, q *[64]int32) (int, error) {
	br := &d.bits
	s, err := br.decode(&d.dc[c.td])
	if err != nil {
		return 0, err
	}
	if s > 11 && !(d.twelve && s <= 15) {
		return 0, fmt.Errorf("DC difference of %d bits", s)
	}
	c.pred += br.receiveExtend(s)
	blk[0] = c.pred * q[0]
	ac := &d.ac[c.ta]
	last := 0
	for k := 1; k < 64; {
		if br.n < 32 {
			br.fill()
		}
		if e := ac.fastAC[br.acc>>(64-huffFastBits)]; e != 0 {
			// A short code and its value bits at once.
			k += int(e>>4) & 15
			l := uint(e & 15)
			br.acc <<= l
			br.n -= l
			if k > 63 {
				return 0, errors.New("AC coefficients run past the end of the block")
			}
			z := zigzag[k]
			blk[z] = e >> 8 * q[z]
			last = k
			k++
			continue
		}
		rs, err := br.decode(ac)
		if err != nil {
			return 0, err
		}
		r, s := int(rs>>4), rs&15
		if s == 0 {
			if r != 15 {
				break // end of block
			}
			k += 16
			continue
		}
		k += r
		if k > 63 {
			return 0, errors.New("AC coefficients run past the end of the block")
		}
		z := zigzag[k]
		blk[z] = br.receiveExtend(s) * q[z]
		last = k
		k++
	}
	return last, br.overrun()
}

// image wraps the planes as an image.Gray or image.YCbCr.
func (d *decoder) image() image.Image {
	r := image.Rect(0, 0, d.width, d.height)
	if len(d.comps) == 1 {
		c := d.comps[0]
		return &image.Gray{Pix: c.pix, Stride: c.stride, Rect: r}
	}
	if len(d.comps) == 4 || d.rgb {
		// Adobe stores CMYK inverted (0 is full ink); image.CMYK and PIL's
		// "CMYK;I" reading hold it the right way up. RGB is stored as is.
		var m image.Image
		var pix []uint8
		var stride int
		invert := uint8(0)
		if d.rgb {
			rgba := image.NewRGBA(r)
			for i := 3; i < len(rgba.Pix); i += 4 {
				rgba.Pix[i] = 255
			}
			m, pix, stride = rgba, rgba.Pix, rgba.Stride
		} else {
			cmyk := image.NewCMYK(r)
			m, pix, stride, invert = cmyk, cmyk.Pix, cmyk.Stride, 255
		}
		for y := range d.height {
			row := pix[y*stride : y*stride+4*d.width]
			for i, c := range d.comps {
				src := c.pix[y*c.stride : y*c.stride+d.width]
				for x, v := range src {
					row[4*x+i] = v ^ invert
				}
			}
		}
		return m
	}
	y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
	m := &image.YCbCr{
		Y: y.pix, Cb: cb.pix, Cr: cr.pix,
		YStride: y.stride, CStride: cb.stride,
		SubsampleRatio: subsampleRatio(y.h/cb.h, y.v/cb.v),
		Rect:           r,
	}
	if m.SubsampleRatio < 0 {
		return &SampledYCbCr{YCbCr: *m, HS: y.h / cb.h, VS: y.v / cb.v}
	}
	return m
}

// SampledYCbCr is a YCbCr image whose chroma subsampling image.YCbCr has no
// name for (3x1, 1x3, 2x4...: any whole ratios, as libjpeg allows): the
// chroma planes are HS times narrower and VS times shorter than Y.
// ConvertYCbCr replicates the chroma samples for it, as libjpeg does for
// such ratios.
type SampledYCbCr struct {
	image.YCbCr
	HS, VS int
}

// At returns the colour at (x, y), with the chroma of its block.
func (m *SampledYCbCr) At(x, y int) color.Color {
	if !(image.Point{x, y}.In(m.Rect)) {
		return color.YCbCr{}
	}
	c := (y/m.VS)*m.CStride + x/m.HS
	return color.YCbCr{Y: m.Y[y*m.YStride+x], Cb: m.Cb[c], Cr: m.Cr[c]}
}

// zigzag maps the zigzag index of a coefficient to its natural position.
var zigzag = [64]int{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}
