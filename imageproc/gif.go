package imageproc

import (
	"image"
	"image/color"
	"image/gif"
)

// decodeGIF decodes the first frame with image/gif, then restores the colour
// of its transparent entry (see gifRestoreTransparent).
func decodeGIF(data []byte, maxPixels int64) (image.Image, error) {
	m, err := checked(gif.DecodeConfig, gif.Decode)(data, maxPixels)
	if p, ok := m.(*image.Paletted); ok && err == nil {
		gifRestoreTransparent(data, p)
	}
	return m, err
}

// Go's image/gif gives the transparent palette entry of a GIF as transparent
// black, dropping the colour stored for it; PIL's convert("RGB") ignores the
// transparency and uses that colour. gifRestoreTransparent puts the stored
// colours back into the first frame's palette, read from the file's colour
// table (the frame's local table, else the global one).
func gifRestoreTransparent(data []byte, m *image.Paletted) {
	table := gifFirstColorTable(data)
	for i, c := range m.Palette {
		if _, _, _, a := c.RGBA(); a == 0 && 3*i+2 < len(table) {
			m.Palette[i] = color.RGBA{table[3*i], table[3*i+1], table[3*i+2], 255}
		}
	}
}

// gifFirstColorTable returns the raw RGB triples of the colour table that
// applies to the first image of a GIF, or nil if the file is too short.
func gifFirstColorTable(b []byte) []byte {
	if len(b) < 13 {
		return nil
	}
	tableLen := func(packed byte) int { return 3 << (packed&7 + 1) }
	pos := 13
	var global []byte
	if b[10]&0x80 != 0 {
		n := tableLen(b[10])
		if pos+n > len(b) {
			return nil
		}
		global, pos = b[pos:pos+n], pos+n
	}
	for pos < len(b) {
		switch b[pos] {
		case 0x21: // extension: label, then sub-blocks up to an empty one
			pos += 2
			for pos < len(b) && b[pos] != 0 {
				pos += int(b[pos]) + 1
			}
			pos++
		case 0x2C: // image descriptor
			if pos+10 > len(b) {
				return global
			}
			if packed := b[pos+9]; packed&0x80 != 0 {
				n := tableLen(packed)
				if pos+10+n > len(b) {
					return global
				}
				return b[pos+10 : pos+10+n]
			}
			return global
		default:
			return global
		}
	}
	return global
}
