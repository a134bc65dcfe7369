package jpeg

import (
	"errors"
	"fmt"
	"math/bits"
)

// Progressive JPEG (ITU T.81 G.1.2, libjpeg's jdphuff.c): the coefficients
// arrive over several scans, DC first then bands of AC coefficients, each
// possibly in two halves (a first pass with the low bits cut off, then
// refinement passes adding one bit at a time). Every block is kept until
// the EOI marker, then dequantized and transformed like a baseline block.

// zigzagGuard is zigzag with entries past 63 pointing at 63, so that a
// corrupt band running past the end of a block stays inside it (libjpeg's
// jpeg_natural_order has the same guard).
var zigzagGuard = func() (z [80]int) {
	copy(z[:], zigzag[:])
	for i := 64; i < len(z); i++ {
		z[i] = 63
	}
	return z
}()

// progressiveScan parses one SOS segment of a progressive file and decodes
// its entropy-coded data into the coefficients.
func (d *decoder) progressiveScan(seg []byte) error {
	if d.comps == nil {
		return errors.New("SOS before SOF")
	}
	if d.lateAdobe {
		return ErrNotHandled
	}
	if d.comps[0].coef == nil {
		d.allocate()
		for i := range d.comps {
			c := &d.comps[i]
			c.coef = make([]int16, d.mx*c.h*d.my*c.v*64)
			c.nz = make([]uint64, d.mx*c.h*d.my*c.v)
		}
	}
	if len(seg) < 1 {
		return errors.New("SOS segment too short")
	}
	n := int(seg[0])
	if n < 1 || len(seg) != 4+2*n {
		return fmt.Errorf("SOS segment has %d bytes for %d components", len(seg), n)
	}
	ss, se := int(seg[1+2*n]), int(seg[2+2*n])
	ah, al := uint(seg[3+2*n]>>4), uint(seg[3+2*n]&15)
	dcScan := ss == 0
	switch {
	case dcScan && se != 0, !dcScan && (se < ss || se > 63 || n != 1), al > 13, ah > 13:
		return fmt.Errorf("progressive scan with spectral selection %d-%d, approximation %d/%d, %d components", ss, se, ah, al, n)
	}
	scan := make([]*component, n)
	for i := range n {
		id, tables := seg[1+2*i], seg[2+2*i]
		for j := range d.comps {
			if d.comps[j].id == id {
				scan[i] = &d.comps[j]
			}
		}
		c := scan[i]
		if c == nil {
			return fmt.Errorf("scan names component id %d, not in the frame", id)
		}
		c.td, c.ta = int(tables>>4), int(tables&15)
		switch {
		case c.td > 3 || c.ta > 3:
			return fmt.Errorf("scan component %d uses Huffman tables %d/%d", i, c.td, c.ta)
		case dcScan && ah == 0 && !d.dc[c.td].ok:
			return fmt.Errorf("scan component %d uses DC Huffman table %d, not defined", i, c.td)
		case !dcScan && !d.ac[c.ta].ok:
			return fmt.Errorf("scan component %d uses AC Huffman table %d, not defined", i, c.ta)
		}
		if c.quant == nil {
			if !d.quantSet[c.tq] {
				return fmt.Errorf("component %d uses quantization table %d, not defined", i, c.tq)
			}
			q := d.quant[c.tq]
			c.quant = &q
		}
		c.pred = 0
	}
	d.eobrun = 0
	d.bits = newBitReader(d.data, d.pos, d.restart)

	// The MCUs of the scan: with one component, each block of the
	// component's own size (not padded to the frame's MCUs); with several,
	// the frame's MCUs.
	var units, perRow int
	if n == 1 {
		c := scan[0]
		hmax, vmax := 1, 1
		for _, o := range d.comps {
			hmax, vmax = max(hmax, o.h), max(vmax, o.v)
		}
		cw := (d.width*c.h + hmax - 1) / hmax
		ch := (d.height*c.v + vmax - 1) / vmax
		perRow = (cw + 7) / 8
		units = perRow * ((ch + 7) / 8)
	} else {
		perRow, units = d.mx, d.mx*d.my
	}
	for u := range units {
		if restarted, err := d.bits.mcu(); err != nil {
			return err
		} else if restarted {
			d.eobrun = 0
			for _, c := range scan {
				c.pred = 0
			}
		}
		ux, uy := u%perRow, u/perRow
		for _, c := range scan {
			bh, bv := 1, 1
			if n > 1 {
				bh, bv = c.h, c.v
			}
			for v := range bv {
				for h := range bh {
					bx, by := ux*bh+h, uy*bv+v
					b := by*d.mx*c.h + bx
					blk := c.coef[b*64 : b*64+64 : b*64+64]
					var err error
					switch {
					case dcScan && ah == 0:
						err = d.dcFirst(c, blk, al)
					case dcScan:
						blk[0] |= int16(d.bits.bits(1)) << al
					case ah == 0:
						err = d.acFirst(&d.ac[c.ta], blk, &c.nz[b], ss, se, al)
					default:
						err = d.acRefine(&d.ac[c.ta], blk, &c.nz[b], ss, se, al)
					}
					if err == nil {
						err = d.bits.overrun()
					}
					if err != nil {
						return fmt.Errorf("scan %d-%d, MCU %d of %d: %w", ss, se, u, units, err)
					}
				}
			}
		}
	}
	d.pos = d.bits.end()
	return nil
}

// dcFirst decodes the first pass of a DC coefficient.
func (d *decoder) dcFirst(c *component, blk []int16, al uint) error {
	s, err := d.bits.decode(&d.dc[c.td])
	if err != nil {
		return err
	}
	if s > 11 {
		return fmt.Errorf("DC difference of %d bits", s)
	}
	c.pred += d.bits.receiveExtend(s)
	blk[0] = int16(c.pred << al)
	return nil
}

// acFirst decodes the first pass of the band ss..se of one block; nz marks
// the zigzag positions of its nonzero coefficients.
func (d *decoder) acFirst(t *huffTable, blk []int16, nz *uint64, ss, se int, al uint) error {
	if d.eobrun > 0 {
		d.eobrun--
		return nil
	}
	br := &d.bits
	for k := ss; k <= se; k++ {
		rs, err := br.decode(t)
		if err != nil {
			return err
		}
		r, s := int(rs>>4), rs&15
		if s != 0 {
			k += r
			v := int16(br.receiveExtend(s) << al)
			blk[zigzagGuard[min(k, 79)]] = v
			if k < 64 && v != 0 {
				*nz |= 1 << k
			}
			continue
		}
		if r != 15 {
			d.eobrun = 1<<r - 1
			if r > 0 {
				d.eobrun += int(br.bits(uint(r)))
			}
			break
		}
		k += 15
	}
	return nil
}

// band is the mask of zigzag positions from..to-1 (to at most 64).
func band(from, to int) uint64 {
	if from >= to {
		return 0
	}
	m := ^uint64(0) << from
	if to < 64 {
		m &= 1<<to - 1
	}
	return m
}

// acRefine decodes a refinement pass of the band ss..se of one block: one
// more bit of every coefficient already nonzero, and coefficients that
// become nonzero (+-1 at this bit). nz (the nonzero positions) lets it step
// from one nonzero or zero coefficient to the next instead of testing each.
func (d *decoder) acRefine(t *huffTable, blk []int16, nz *uint64, ss, se int, al uint) error {
	br := &d.bits
	p1, m1 := int16(1)<<al, int16(-1)<<al
	// refine reads a correction bit for each nonzero coefficient in from..to-1.
	refine := func(from, to int) {
		for m := *nz & band(from, to); m != 0; m &= m - 1 {
			z := zigzag[bits.TrailingZeros64(m)]
			if br.bits(1) != 0 && blk[z]&p1 == 0 {
				if blk[z] >= 0 {
					blk[z] += p1
				} else {
					blk[z] += m1
				}
			}
		}
	}
	k := ss
	if d.eobrun == 0 {
		for ; k <= se; k++ {
			rs, err := br.decode(t)
			if err != nil {
				return err
			}
			r, s := int(rs>>4), rs&15
			var v int16
			if s != 0 {
				v = m1
				if br.bits(1) != 0 {
					v = p1
				}
			} else if r != 15 {
				d.eobrun = 1 << r
				if r > 0 {
					d.eobrun += int(br.bits(uint(r)))
				}
				break
			}
			// Skip r coefficients still zero, refining the nonzero ones
			// passed on the way, and stop on the zero that becomes v.
			zeros := ^*nz & band(k, se+1)
			for ; r > 0 && zeros != 0; r-- {
				zeros &= zeros - 1
			}
			next := se + 1
			if zeros != 0 {
				next = bits.TrailingZeros64(zeros)
			}
			refine(k, next)
			k = next
			if v != 0 {
				blk[zigzagGuard[min(k, 79)]] = v
				if k < 64 {
					*nz |= 1 << k
				}
			}
		}
	}
	if d.eobrun > 0 {
		refine(k, se+1)
		d.eobrun--
	}
	return nil
}

// finishProgressive dequantizes and transforms every block into the planes.
func (d *decoder) finishProgressive() {
	var blk [64]int32
	for i := range d.comps {
		c := &d.comps[i]
		q := c.quant
		if q == nil {
			q = &d.quant[c.tq] // never in a scan: its coefficients are all zero
		}
		bw := d.mx * c.h
		for b := 0; b < len(c.coef)/64; b++ {
			coef := c.coef[b*64 : b*64+64 : b*64+64]
			last := 0
			for z, v := range coef {
				blk[z] = int32(v) * q[z]
				if v != 0 && z > 0 {
					last = 63
				}
			}
			bx, by := b%bw, b/bw
			idctIslow(c.pix[by*8*c.stride+bx*8:], c.stride, &blk, last)
		}
	}
}
