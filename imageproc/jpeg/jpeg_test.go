package jpeg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	stdjpeg "image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/imageproc/internal/imgerr"
	"github.com/medgemma/medgemma/imageproc/internal/imgtest"
)

// TestJPEGInDICOM decodes the JPEG baseline stream inside the reference
// chest X-ray DICOM: the 1024x1024 samples hash to what Pillow (libjpeg-turbo
// 2.1.5) decodes from the same bytes.
func TestJPEGInDICOM(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "testdata", "dicom", "cxr_encapsulated_cxr.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(data, []byte{0xFF, 0xD8, 0xFF}), bytes.LastIndex(data, []byte{0xFF, 0xD9})
	m, err := decodeLibjpeg(data[i : j+2])
	if err != nil {
		t.Fatal(err)
	}
	g, ok := m.(*image.Gray)
	if !ok || g.Rect.Dx() != 1024 || g.Rect.Dy() != 1024 {
		t.Fatalf("decoded %T %v, want 1024x1024 gray", m, m.Bounds())
	}
	h := sha256.New()
	for y := range 1024 {
		h.Write(g.Pix[y*g.Stride : y*g.Stride+1024])
	}
	const pillow = "f15e27369e44455320d6f2a42cfd2fca3fd2f74c17479ef7449d7b83f7df0c77"
	if got := hex.EncodeToString(h.Sum(nil)); got != pillow {
		t.Errorf("sha256 of the samples %s, Pillow's %s", got, pillow)
	}
}

// TestJPEGFallback checks which files decodeJPEG leaves to image/jpeg.
func TestJPEGFallback(t *testing.T) {
	for file, other := range map[string]bool{
		"formats/ycc420.jpg":   false,
		"formats/gray.jpg":     false,
		"formats/cmyk.jpg":     false, // Adobe CMYK
		"jpeg/progressive.jpg": false,
		"jpeg/rgb.jpg":         false,
	} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		_, err = decodeLibjpeg(data)
		if got := err == ErrNotHandled; got != other || err != nil && !other {
			t.Errorf("%s: error %v, want fallback %v", file, err, other)
		}
	}
}

// TestJPEGCloseToStdlib compares with image/jpeg on Go-encoded images of many
// sizes: the two IDCTs differ by a level or two, never more, so any block
// misplaced at an edge shows.
func TestJPEGCloseToStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, size := range [][2]int{{1, 1}, {7, 9}, {8, 8}, {15, 17}, {16, 16}, {33, 18}, {64, 47}} {
		w, h := size[0], size[1]
		src := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := range src.Pix {
			src.Pix[i] = uint8(rng.IntN(256))
		}
		for _, gray := range []bool{false, true} {
			var m image.Image = src
			if gray {
				g := image.NewGray(src.Rect)
				copy(g.Pix, src.Pix)
				m = g
			}
			var buf bytes.Buffer
			if err := stdjpeg.Encode(&buf, m, &stdjpeg.Options{Quality: 80}); err != nil {
				t.Fatal(err)
			}
			ours, err := decodeLibjpeg(buf.Bytes())
			if err != nil {
				t.Fatalf("%dx%d gray %v: %v", w, h, gray, err)
			}
			std, err := stdjpeg.Decode(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if ours.Bounds() != std.Bounds() {
				t.Fatalf("%dx%d: bounds %v, want %v", w, h, ours.Bounds(), std.Bounds())
			}
			worst := 0
			for y := range h {
				for x := range w {
					a, b := ours.At(x, y), std.At(x, y)
					ar, ag, ab, _ := a.RGBA()
					br, bg, bb, _ := b.RGBA()
					for _, d := range []int{int(ar>>8) - int(br>>8), int(ag>>8) - int(bg>>8), int(ab>>8) - int(bb>>8)} {
						worst = max(worst, d, -d)
					}
				}
			}
			if worst > 4 {
				t.Errorf("%dx%d gray %v: differs from image/jpeg by up to %d", w, h, gray, worst)
			}
		}
	}
}

// TestIDCT checks the SIMD inverse DCT against the plain Go one on random
// blocks: coefficients of valid files, and arbitrary ones where the int32
// arithmetic wraps.
func TestIDCT(t *testing.T) {
	if !useIDCTAVX2 {
		t.Log("no SIMD inverse DCT on this CPU; only the plain Go one runs")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	var blk [64]int32
	for i := range 20000 {
		for k := range blk {
			switch {
			case i%4 == 3:
				blk[k] = int32(rng.Uint32())
			case rng.IntN(3) == 0:
				blk[k] = int32(rng.IntN(4096) - 2048)
			default:
				blk[k] = 0
			}
		}
		var want, got [8 * 11]uint8 // stride 11: rows are not contiguous
		idctIslowRef(want[:], 11, &blk)
		idctIslow(got[:], 11, &blk, 63)
		if got != want {
			t.Fatalf("block %d: %v\ngot  %v\nwant %v", i, blk, got, want)
		}
	}
	// DC only: libjpeg's shortcut gives what the full transform gives.
	for dc := int32(-2048 * 16); dc < 2048*16; dc += 7 {
		blk = [64]int32{dc}
		var want, got [64]uint8
		idctIslowRef(want[:], 8, &blk)
		idctIslow(got[:], 8, &blk, 0)
		if got != want {
			t.Fatalf("DC %d: %d, want %d", dc, got[0], want[0])
		}
	}
}

// TestJPEGErrors feeds damaged baseline files: every one is an error naming
// the problem, none panics.
func TestJPEGErrors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "testdata", "jpeg", "ycc420_restart.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	sos := bytes.Index(data, []byte{0xFF, 0xDA})
	rst := bytes.Index(data[sos:], []byte{0xFF, 0xD0}) + sos
	cut := func(i, j int) []byte { return append(append([]byte(nil), data[:i]...), data[j:]...) }
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated in the scan", data[:sos+40], "truncated file"},
		{"truncated in a header", data[:sos-30], "runs past the end"},
		{"no SOI", data[2:], "missing SOI"},
		{"restart marker missing", cut(rst, rst+2), "restart marker"},
		{"wrong restart marker", append(append(append([]byte(nil), data[:rst+1]...), 0xD3), data[rst+2:]...), "expected restart marker RST0, found marker 0xD3"},
		{"EOI early", append(append([]byte(nil), data[:sos+30]...), 0xFF, 0xD9), "ends early"},
	} {
		_, err := decodeLibjpeg(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	// The pixel limit applies before decoding (a DICOM passes its header's
	// rows x columns, so an embedded JPEG cannot be larger).
	if _, err := Decode(data, 37*29-1); err == nil || !strings.Contains(err.Error(), "over the limit of 1072") || !errors.Is(err, imgerr.ErrTooLarge) {
		t.Errorf("37x29 JPEG with a limit of 1072 pixels: error %v", err)
	}
	if _, err := Decode(data, 37*29); err != nil {
		t.Errorf("37x29 JPEG with a limit of 1073 pixels: %v", err)
	}
}

// FuzzJPEG runs the baseline, progressive and lossless decoders themselves,
// without Decode's recover: a damaged file must give an error or an image,
// never a panic.
func FuzzJPEG(f *testing.F) {
	for _, name := range []string{"jpeg/ycc420_restart.jpg", "jpeg/gray_restart.jpg", "jpeg/ycc422_optimized.jpg", "jpeg/ycc411.jpg", "formats/ycc444.jpg", "jpeg/progressive.jpg", "jpeg/progressive_restart.jpg"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	pix := make([]uint16, 9*7)
	for i := range pix {
		pix[i] = uint16(i * 997)
	}
	f.Add(encodeLossless(pix, 9, 7, 16, 6, 9))
	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeLossless(data, 1<<20) // an error or samples, never a panic
		if w, h, err := Config(data); err == nil && w*h > 1<<20 {
			return // Decode refuses these from the header
		}
		Decode12(data, 1<<20)
		m, err := decodeLibjpeg(data)
		if err != nil {
			return
		}
		if pix, ok := ToRGB(m); ok && len(pix) != 3*m.Bounds().Dx()*m.Bounds().Dy() {
			t.Fatalf("decoded %v but converted it to %d bytes", m.Bounds(), len(pix))
		}
	})
}

// TestJPEGTruncations decodes every prefix of a baseline and a progressive
// file with restarts: each is an error (or, past the last scan, the image),
// never a panic.
func TestJPEGTruncations(t *testing.T) {
	for _, name := range []string{"ycc420_restart.jpg", "progressive_restart.jpg"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "jpeg", name))
		if err != nil {
			t.Fatal(err)
		}
		ok := 0
		for n := range data {
			if _, err := decodeLibjpeg(data[:n]); err == nil {
				ok++
			}
		}
		if ok > 2 { // at most: cut inside or before the EOI marker
			t.Errorf("%s: %d truncated prefixes decoded without error", name, ok)
		}
	}
}

// TestSampledYCbCrAt checks the colour model view of a chroma ratio
// image.YCbCr has no name for (3x1): each pixel takes its block's chroma.
func TestSampledYCbCrAt(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "testdata", "jpeg", "ycc_3x1.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeLibjpeg(data)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := m.(*SampledYCbCr)
	if !ok || s.HS != 3 || s.VS != 1 {
		t.Fatalf("decoded %T, want 3x1 SampledYCbCr", m)
	}
	for _, p := range [][2]int{{0, 0}, {2, 0}, {3, 0}, {18, 12}, {7, 5}} {
		c := s.At(p[0], p[1]).(color.YCbCr)
		ci := p[1]*s.CStride + p[0]/3
		if c.Y != s.Y[p[1]*s.YStride+p[0]] || c.Cb != s.Cb[ci] || c.Cr != s.Cr[ci] {
			t.Errorf("At%v = %v", p, c)
		}
	}
	if s.At(19, 0) != (color.YCbCr{}) {
		t.Error("At outside the image is not the zero colour")
	}
}

// TestYCCToRGBSIMD checks the AVX2 colour conversion against the plain Go
// one for every combination of luma and chroma bytes.
func TestYCCToRGBSIMD(t *testing.T) {
	if !useYCCAVX2 {
		t.Skip("no SIMD colour conversion on this CPU: only the plain Go one exists here")
	}
	cb, cr := make([]uint8, 65536), make([]uint8, 65536)
	for i := range cb {
		cb[i], cr[i] = uint8(i), uint8(i>>8)
	}
	yrow := make([]uint8, 65536)
	got, want := make([]uint8, 3*65536), make([]uint8, 3*65536)
	for y := range 256 {
		for i := range yrow {
			yrow[i] = uint8(y)
		}
		yccRowToRGB(got, yrow, cb, cr)
		yccRowToRGBRef(want, yrow, cb, cr)
		if !bytes.Equal(got, want) {
			t.Fatalf("luma %d: AVX2 differs from plain Go", y)
		}
	}
}

// TestH2V2RowSIMD checks libjpeg's 2x2 chroma upsampling with the AVX2
// interior against the plain Go loop, for every row length up to 100.
func TestH2V2RowSIMD(t *testing.T) {
	if !useYCCAVX2 {
		t.Skip("no SIMD chroma upsampling on this CPU: only the plain Go loop exists here")
	}
	rng := rand.New(rand.NewPCG(19, 20))
	for n := 2; n <= 100; n++ {
		cur, near := make([]uint8, n), make([]uint8, n)
		for i := range cur {
			cur[i], near[i] = uint8(rng.IntN(256)), uint8(rng.IntN(256))
		}
		got, want := make([]uint8, 2*n), make([]uint8, 2*n)
		h2v2Row(got, cur, near)
		useYCCAVX2 = false
		h2v2Row(want, cur, near)
		useYCCAVX2 = true
		if !bytes.Equal(got, want) {
			t.Fatalf("n=%d: AVX2 differs from plain Go", n)
		}
	}
}

// BenchmarkYCbCrToRGB2048 upsamples and converts a 2048x2048 4:2:0 image.
func BenchmarkYCbCrToRGB2048(b *testing.B) {
	m, err := Decode(imgtest.PhotoJPEG(2048, 2048), 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok := ToRGB(m); !ok {
			b.Fatalf("%T not converted", m)
		}
	}
}

func BenchmarkJPEGDecodeStdlib2048(b *testing.B) {
	data := imgtest.PhotoJPEG(2048, 2048)
	for b.Loop() {
		if _, err := stdjpeg.Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJPEGDecode2048(b *testing.B) {
	data := imgtest.PhotoJPEG(2048, 2048)
	for b.Loop() {
		if _, err := Decode(data, 1<<30); err != nil {
			b.Fatal(err)
		}
	}
}
