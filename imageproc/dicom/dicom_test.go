package dicom

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/medgemma/medgemma/imageproc/jpeg"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/frame"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// firstFrame parses a DICOM file and returns its first frame and header.
func firstFrame(t *testing.T, path string) (*frame.Frame, *Info) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := parse(data)
	if err != nil {
		t.Fatal(err)
	}
	di, err := readInfo(&ds)
	if err != nil {
		t.Fatal(err)
	}
	el, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		t.Fatal(err)
	}
	return el.Value.GetValue().(dicom.PixelDataInfo).Frames[0], di
}

// frameValues returns the stored values of a DICOM file's first frame.
func frameValues(t *testing.T, path string) []float64 {
	t.Helper()
	fr, di := firstFrame(t, path)
	var raw any
	var err error
	switch {
	case fr.Encapsulated && di.TransferSyntax == tsJPEGExtended:
		raw, err = func() (any, error) {
			_, _, pix, err := jpeg.Decode12(fr.EncapsulatedData.Data, 1<<24)
			return pix, err
		}()
	case fr.Encapsulated:
		raw, err = decodeLosslessFrame(fr.EncapsulatedData.Data, di)
	default:
		var nf frame.INativeFrame
		if nf, err = fr.GetNativeFrame(); err == nil {
			raw = nf.RawDataSlice()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	v, err := nativeSamples(raw, di)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDICOMLosslessDamaged feeds truncated and corrupted JPEG lossless and
// RLE frames to the decoders directly (no recover): errors, never a panic.
func TestDICOMLosslessDamaged(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, name := range []string{"synth_sv6.dcm", "synth_rle.dcm", "wsi_sv1.dcm", "wsi_rle.dcm"} {
		fr, di := firstFrame(t, filepath.Join("..", "testdata", "dicom", "lossless", name))
		frameData := fr.EncapsulatedData.Data
		if _, err := decodeLosslessFrame(frameData, di); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for n := 0; n < len(frameData); n += 1 + n/50 {
			if _, err := decodeLosslessFrame(frameData[:n], di); err == nil {
				t.Errorf("%s cut to %d of %d bytes: no error", name, n, len(frameData))
			}
		}
		for range 300 {
			b := append([]byte(nil), frameData...)
			for range 1 + rng.IntN(8) {
				b[rng.IntN(len(b))] = uint8(rng.IntN(256))
			}
			decodeLosslessFrame(b, di) // an error or garbage pixels, never a panic
		}
	}
}

// TestDICOMJPEG12Damaged feeds truncated and corrupted 12-bit JPEG streams
// to the decoder directly (no recover): errors, never a panic.
func TestDICOMJPEG12Damaged(t *testing.T) {
	dir := filepath.Join("..", "testdata", "dicom", "lossless")
	// The stored values of a 12-bit frame equal DCMTK's decoding of it.
	got, want := frameValues(t, filepath.Join(dir, "synth_ext.dcm")), frameValues(t, filepath.Join(dir, "synth_ext_dec.dcm"))
	if !slices.Equal(got, want) {
		t.Error("synth_ext: stored values differ from DCMTK's decoding")
	}
	// Damaged 12-bit streams: errors, never a panic.
	data, err := os.ReadFile(filepath.Join(dir, "synth_ext.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	soi := bytes.Index(data, []byte{0xFF, 0xD8, 0xFF})
	eoi := bytes.LastIndex(data, []byte{0xFF, 0xD9})
	stream := data[soi : eoi+2]
	for n := 0; n < len(stream)-2; n += 1 + n/40 {
		if _, _, _, err := jpeg.Decode12(stream[:n], 1<<20); err == nil {
			t.Errorf("12-bit JPEG cut to %d of %d bytes: no error", n, len(stream))
		}
	}
	rng := rand.New(rand.NewPCG(17, 18))
	for range 300 {
		b := append([]byte(nil), stream...)
		for range 1 + rng.IntN(8) {
			b[rng.IntN(len(b))] = uint8(rng.IntN(256))
		}
		jpeg.Decode12(b, 1<<20)
	}
}

// TestDICOMLengthsFitDamaged runs the length walker itself (no recover) on
// every DICOM fixture, truncated and corrupted: it accepts the intact files
// and never panics.
func TestDICOMLengthsFitDamaged(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "dicom", "*.dcm"))
	more, _ := filepath.Glob(filepath.Join("..", "testdata", "dicom", "lossless", "*.dcm"))
	rng := rand.New(rand.NewPCG(21, 22))
	for _, f := range append(files, more...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := lengthsFit(data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		for n := 0; n < len(data); n += 1 + n/20 {
			lengthsFit(data[:n])
		}
		for range 200 {
			b := append([]byte(nil), data...)
			for range 1 + rng.IntN(6) {
				b[132+rng.IntN(len(b)-132)] = uint8(rng.IntN(256))
			}
			lengthsFit(b)
		}
	}
}
