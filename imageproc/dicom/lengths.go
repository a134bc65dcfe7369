package dicom

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// github.com/suyashkumar/dicom allocates a value's declared length before it
// reads the value: a few kilobytes of malformed file declaring a 2 GB string
// make it allocate 2 GB (fuzzing found one; upstream issues #220 and #349
// are about the same). lengthsFit walks the data elements first, the
// way the library reads them, and refuses a file where a declared length
// exceeds the bytes left, or where a value the library would read whole has
// undefined length.
func lengthsFit(data []byte) error {
	const undefined = 0xFFFFFFFF
	pos := 132 // preamble and "DICM"
	var bo binary.ByteOrder = binary.LittleEndian
	implicit, meta := false, true
	var ts string
	pixelItems := false // inside encapsulated pixel data: items are opaque fragments
	for pos+8 <= len(data) {
		if meta && binary.LittleEndian.Uint16(data[pos:]) != 0x0002 {
			// The file meta group is explicit little endian; the rest
			// follows its transfer syntax.
			meta = false
			switch ts {
			case "1.2.840.10008.1.2":
				implicit = true
			case "1.2.840.10008.1.2.2":
				bo = binary.BigEndian
			case "1.2.840.10008.1.2.1.99":
				return fmt.Errorf("transfer syntax %s (Deflated Explicit VR Little Endian) is not supported", ts)
			}
		}
		t := tag.Tag{Group: bo.Uint16(data[pos:]), Element: bo.Uint16(data[pos+2:])}
		left := func(at int) uint32 { return uint32(len(data) - at) }
		if t.Group == 0xFFFE { // items and delimiters: tag and a 4-byte length
			vl := bo.Uint32(data[pos+4:])
			pos += 8
			switch {
			case t.Element == 0xE0DD:
				pixelItems = false
			case t.Element == 0xE000 && vl != undefined && vl > left(pos):
				return fmt.Errorf("item at offset %d declares %d bytes, %d remain", pos-8, vl, left(pos))
			case t.Element == 0xE000 && pixelItems:
				pos += int(vl) // a fragment of compressed pixel data
			}
			continue
		}
		var vr string
		var vl uint32
		if implicit && !meta {
			vr = tag.UnknownVR
			if e, err := tag.Find(t); err == nil {
				vr = e.VRs[0]
				if e.Tag == tag.PixelData || e.Tag == tag.OverlayData {
					vr = "OW"
				}
			}
			vl = bo.Uint32(data[pos+4:])
			pos += 8
		} else {
			vr = string(data[pos+4 : pos+6])
			switch vr {
			case "NA", "OB", "OD", "OF", "OL", "OW", "SQ", "UN", "UC", "UR", "UT":
				if pos+12 > len(data) {
					return fmt.Errorf("element %v at offset %d is cut short", t, pos)
				}
				vl = bo.Uint32(data[pos+8:])
				pos += 12
			default:
				vl = uint32(bo.Uint16(data[pos+6:]))
				pos += 8
			}
		}
		kind := tag.GetVRKind(t, vr)
		if vl == undefined {
			switch kind {
			case tag.VRSequence, tag.VRUnknown, tag.VRBytes:
			case tag.VRPixelData:
				pixelItems = true
			default:
				return fmt.Errorf("element %v (%s) has undefined length", t, vr)
			}
			continue // items follow
		}
		if vl > left(pos) {
			return fmt.Errorf("element %v (%s) at offset %d declares %d bytes, %d remain", t, vr, pos, vl, left(pos))
		}
		if kind == tag.VRSequence {
			continue // its items follow
		}
		if t == tag.TransferSyntaxUID {
			ts = strings.TrimRight(string(data[pos:pos+int(vl)]), " \x00")
		}
		pos += int(vl)
	}
	return nil
}
