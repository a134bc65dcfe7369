package imageproc

import (
	"bytes"
	"encoding/binary"

	"github.com/medgemma/medgemma/imageproc/jpeg"
)

// transformers' load_image applies PIL's ImageOps.exif_transpose before
// convert("RGB"): a photo taken with the camera turned is shown upright. The
// EXIF Orientation tag (274) is read from where PIL reads it: a JPEG's APP1
// Exif segment, a PNG's eXIf chunk, a WebP's EXIF chunk. TIFF files keep
// their stored orientation: PIL's libtiff decoder already applies the tag
// when it loads the pixels, and exif_transpose then turns them a second time,
// which is nothing to copy.

// exifOrientation returns the EXIF orientation of an encoded image, 1 (as
// stored) when there is none or it is not 1..8.
func exifOrientation(format string, data []byte) int {
	var tiff []byte
	switch format {
	case "jpeg":
		tiff = jpeg.Exif(data)
	case "png":
		tiff = pngChunk(data, "eXIf")
	case "webp":
		tiff = webpChunk(data, "EXIF")
	}
	tiff = bytes.TrimPrefix(tiff, []byte("Exif\x00\x00"))
	o := tiffOrientation(tiff)
	if o < 1 || o > 8 {
		return 1
	}
	return o
}

// pngChunk returns the data of the first chunk of the given type.
func pngChunk(b []byte, typ string) []byte {
	for pos := 8; pos+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[pos:]))
		if n < 0 || n > len(b)-pos-12 {
			return nil
		}
		if string(b[pos+4:pos+8]) == typ {
			return b[pos+8 : pos+8+n]
		}
		pos += 12 + n
	}
	return nil
}

// webpChunk returns the data of the first RIFF chunk of the given type.
func webpChunk(b []byte, typ string) []byte {
	for pos := 12; pos+8 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[pos+4:]))
		if n < 0 || n > len(b)-pos-8 {
			return nil
		}
		if string(b[pos:pos+4]) == typ {
			return b[pos+8 : pos+8+n]
		}
		pos += 8 + n + n&1 // chunks are padded to even sizes
	}
	return nil
}

// tiffOrientation reads tag 274 (a SHORT) from the first IFD of a TIFF
// structure, 0 when absent.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 0
	}
	ifd := int64(bo.Uint32(t[4:]))
	if ifd+2 > int64(len(t)) {
		return 0
	}
	n := int64(bo.Uint16(t[ifd:]))
	for i := range n {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 0
		}
		if bo.Uint16(t[e:]) == 274 && bo.Uint16(t[e+2:]) == 3 {
			return int(bo.Uint16(t[e+8:]))
		}
	}
	return 0
}

// orient applies an EXIF orientation as PIL's exif_transpose does:
// 2 flip left-right, 3 rotate 180, 4 flip top-bottom, 5 transpose,
// 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
func orient(img *RGB, o int) *RGB {
	w, h := img.W, img.H
	if o == 1 {
		return img
	}
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := NewRGB(ow, oh)
	// src maps an output pixel to the input pixel it shows.
	src := func(x, y int) (int, int) {
		switch o {
		case 2:
			return w - 1 - x, y
		case 3:
			return w - 1 - x, h - 1 - y
		case 4:
			return x, h - 1 - y
		case 5:
			return y, x
		case 6:
			return y, h - 1 - x
		case 7:
			return w - 1 - y, h - 1 - x
		default: // 8
			return w - 1 - y, x
		}
	}
	for y := range oh {
		for x := range ow {
			sx, sy := src(x, y)
			copy(out.Pix[3*(y*ow+x):3*(y*ow+x)+3], img.Pix[3*(sy*w+sx):])
		}
	}
	return out
}
