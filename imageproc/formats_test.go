package imageproc

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

func loadPNG(t testing.TB, path string) *RGB {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	rgb, err := ToRGB(m)
	if err != nil {
		t.Fatal(err)
	}
	return rgb
}

// TestFormatsAgainstPIL decodes small files made with Pillow and compares
// them with Pillow's convert("RGB") of the same file.
func TestFormatsAgainstPIL(t *testing.T) {
	for _, c := range []struct {
		file    string
		maxDiff int
		mean    float64
	}{
		{"lossless.webp", 0, 0},
		{"lossy.webp", 0, 0},      // libwebp's upsampling and conversion, ported
		{"transparent.gif", 0, 0}, // the transparent entry keeps its colour
		{"cmyk.jpg", 0, 0},
		{"gray.jpg", 0, 0},
		// Colour JPEG: libjpeg's IDCT, chroma upsampling and conversion.
		{"ycc444.jpg", 0, 0},
		{"ycc422.jpg", 0, 0},
		{"ycc420.jpg", 0, 0},
	} {
		dir := filepath.Join("testdata", "formats")
		img, info, err := DecodeFile(filepath.Join(dir, c.file), Options{})
		if err != nil {
			t.Fatal(err)
		}
		m, mean := diff(t, img, loadPNG(t, filepath.Join(dir, c.file+".pil.png")))
		t.Logf("%s (%s %s): max %d mean %.4f", c.file, info.Format, info.Mode, m, mean)
		if m > c.maxDiff || mean > c.mean {
			t.Errorf("%s: max %d mean %.4f, want at most %d and %.4f", c.file, m, mean, c.maxDiff, c.mean)
		}
	}
}

// TestPixelLayouts encodes small images of every layout with known pixels and
// checks the RGB that decoding gives, as PIL's convert("RGB") would.
func TestPixelLayouts(t *testing.T) {
	pal := color.Palette{color.RGBA{10, 20, 30, 255}, color.NRGBA{200, 100, 50, 0}}
	paletted := image.NewPaletted(image.Rect(0, 0, 2, 1), pal)
	paletted.Pix = []uint8{0, 1}
	// Go's GIF encoder writes no colour for a transparent entry (it stores
	// the premultiplied black); testdata/formats/transparent.gif, made by
	// Pillow, checks that a stored colour is kept.
	opaque := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{200, 100, 50, 255}})
	opaque.Pix = []uint8{0, 1}
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	copy(nrgba.Pix, []uint8{255, 128, 0, 0, 1, 2, 3, 77}) // alpha dropped, not composited
	gray16 := image.NewGray16(image.Rect(0, 0, 3, 1))
	for i, v := range []uint16{0, 128, 65535} { // round(v/257): 0, 0 (0.498), 255
		gray16.SetGray16(i, 0, color.Gray16{v})
	}
	rgb64 := image.NewRGBA64(image.Rect(0, 0, 1, 1))
	rgb64.SetRGBA64(0, 0, color.RGBA64{0x1234, 0xabcd, 0xff00, 0xffff}) // high bytes
	ga := image.NewNRGBA64(image.Rect(0, 0, 1, 1))
	ga.SetNRGBA64(0, 0, color.NRGBA64{0x8080, 0x8080, 0x8080, 0x1000})
	encPNG := func(m image.Image) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, m); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	encGIF := func(m image.Image) []byte {
		var b bytes.Buffer
		if err := gif.Encode(&b, m, nil); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	encBMP := func(m image.Image) []byte {
		var b bytes.Buffer
		if err := bmp.Encode(&b, m); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	encTIFF := func(m image.Image) []byte {
		var b bytes.Buffer
		if err := tiff.Encode(&b, m, nil); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	for _, c := range []struct {
		name, format string
		data         []byte
		want         []uint8
	}{
		{"png palette with transparency", "png", encPNG(paletted), []uint8{10, 20, 30, 200, 100, 50}},
		{"png rgba", "png", encPNG(nrgba), []uint8{255, 128, 0, 1, 2, 3}},
		{"png gray16", "png", encPNG(gray16), []uint8{0, 0, 0, 0, 0, 0, 255, 255, 255}},
		{"png rgb16", "png", encPNG(rgb64), []uint8{0x12, 0xab, 0xff}},
		{"png gray+alpha 16", "png", encPNG(ga), []uint8{0x80, 0x80, 0x80}},
		{"gif", "gif", encGIF(opaque), []uint8{10, 20, 30, 200, 100, 50}},
		{"bmp", "bmp", encBMP(nrgba), []uint8{255, 128, 0, 1, 2, 3}},
		{"tiff", "tiff", encTIFF(gray16), []uint8{0, 0, 0, 0, 0, 0, 255, 255, 255}},
	} {
		img, info, err := Decode(c.data, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if info.Format != c.format || !bytes.Equal(img.Pix, c.want) {
			t.Errorf("%s: %s %v, want %s %v", c.name, info.Format, img.Pix, c.format, c.want)
		}
	}
	// A window on 16-bit gray maps stored values: 100,200 -> [0, 200].
	w := Window{Center: 100, Width: 200}
	img, _, err := Decode(encPNG(gray16), Options{Window: &w})
	if err != nil || !bytes.Equal(img.Pix, []uint8{0, 0, 0, 163, 163, 163, 255, 255, 255}) {
		t.Errorf("windowed gray16: %v %v", img, err) // 128*255/200 = 163.2
	}
	if _, _, err := Decode(encPNG(nrgba), Options{Window: &w}); err == nil || !strings.Contains(err.Error(), "grayscale") {
		t.Errorf("window on colour: %v", err)
	}
}

func TestBadImages(t *testing.T) {
	var good bytes.Buffer
	if err := png.Encode(&good, image.NewGray(image.Rect(0, 0, 40, 30))); err != nil {
		t.Fatal(err)
	}
	jpg, err := os.ReadFile(filepath.Join("testdata", "formats", "ycc420.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		opts Options
		kind error
		want string
	}{
		{"empty", nil, Options{}, ErrCorrupt, "empty file"},
		{"text", []byte("hello, world"), Options{}, ErrUnsupported, "unknown image format"},
		{"truncated png", good.Bytes()[:40], Options{}, ErrCorrupt, "png"},
		{"truncated jpeg", jpg[:len(jpg)/2], Options{}, ErrCorrupt, "jpeg"},
		{"over the limit", good.Bytes(), Options{MaxPixels: 1199}, ErrTooLarge, "40x30 = 1200 pixels, over the limit of 1199"},
		{"jpeg over the limit", jpg, Options{MaxPixels: 10}, ErrTooLarge, "over the limit of 10"},
		{"zero width", encodeZeroPNG(t), Options{}, ErrCorrupt, ""},
		{"window on colour", jpg, Options{Window: &Window{Center: 1, Width: 2}}, ErrOptions, "a window applies to grayscale"},
	} {
		_, _, err := Decode(c.data, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.kind) {
			t.Errorf("%s: error %v, want %q (%v)", c.name, err, c.want, c.kind)
		}
	}
	path := filepath.Join(t.TempDir(), "x.png")
	os.WriteFile(path, []byte("GIF89a"), 0o644)
	if _, _, err := DecodeFile(path, Options{}); err == nil || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("errors name the file: %v", err)
	}
}

// encodeZeroPNG is a PNG whose header says 0 x 1.
func encodeZeroPNG(t *testing.T) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	d := b.Bytes()
	d[16+3] = 0 // IHDR width = 0 (the CRC no longer matches either)
	return d
}

// FuzzDecode feeds arbitrary bytes to the decoders: an error is fine, a panic
// or an image over the limit is not.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"formats/lossless.webp", "formats/lossy.webp", "formats/gray.jpg", "formats/cmyk.jpg", "images/rgba_300x200.png", "images/palette_256x256.png", "images/tiny_rgb_20x30.png", "formats/transparent.gif", "dicom/wsi_test.dcm"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, _, err := Decode(data, Options{MaxPixels: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrOptions) {
				t.Fatalf("error of no kind: %v", err)
			}
			return
		}
		if img.W*img.H > 1<<20 || len(img.Pix) != img.W*img.H*3 {
			t.Fatalf("decoded %dx%d with %d bytes", img.W, img.H, len(img.Pix))
		}
	})
}

// TestGIFColorTable reads the first frame's colour table of the Pillow GIF
// and of every truncation of it (no panic, nil or a table).
func TestGIFColorTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "formats", "transparent.gif"))
	if err != nil {
		t.Fatal(err)
	}
	if got := gifFirstColorTable(data); !bytes.Equal(got[:6], []byte{10, 20, 30, 200, 100, 50}) {
		t.Errorf("colour table starts %v", got[:6])
	}
	for n := range data {
		if tab := gifFirstColorTable(data[:n]); tab != nil && len(tab)%3 != 0 {
			t.Errorf("%d bytes: table of %d bytes", n, len(tab))
		}
	}
}

// TestEXIFOrientation checks each EXIF orientation against what transformers'
// load_image makes of the file (PIL's exif_transpose, then convert("RGB")),
// in the three containers that carry it.
func TestEXIFOrientation(t *testing.T) {
	for _, name := range []string{"o1.png", "o2.png", "o3.png", "o4.png", "o5.png", "o6.png", "o7.png", "o8.png", "o6.jpg", "o6.webp"} {
		path := filepath.Join("testdata", "orientation", name)
		img, info, err := DecodeFile(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := loadPNG(t, path+".pil.png")
		if img.W != want.W || img.H != want.H {
			t.Errorf("%s: %dx%d, want %dx%d", name, img.W, img.H, want.W, want.H)
			continue
		}
		if m, mean := diff(t, img, want); m != 0 {
			t.Errorf("%s: max difference %d, mean %.4f", name, m, mean)
		}
		if o := int(name[1] - '0'); (o == 1 && info.Orientation != 0) || (o > 1 && info.Orientation != o) {
			t.Errorf("%s: Info.Orientation %d", name, info.Orientation)
		}
	}
}

// TestEXIFOrientationDamaged reads the orientation of every truncation and of
// random corruptions of the fixtures: no panic, and 1 when it cannot be read.
func TestEXIFOrientationDamaged(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for format, name := range map[string]string{"png": "o6.png", "jpeg": "o6.jpg", "webp": "o6.webp"} {
		data, err := os.ReadFile(filepath.Join("testdata", "orientation", name))
		if err != nil {
			t.Fatal(err)
		}
		if o := exifOrientation(format, data); o != 6 {
			t.Errorf("%s: orientation %d, want 6", name, o)
		}
		for n := range data {
			if o := exifOrientation(format, data[:n]); o < 1 || o > 8 {
				t.Errorf("%s cut at %d: orientation %d", name, n, o)
			}
		}
		for range 2000 {
			b := append([]byte(nil), data...)
			for range 1 + rng.IntN(4) {
				b[rng.IntN(len(b))] = uint8(rng.IntN(256))
			}
			if o := exifOrientation(format, b); o < 1 || o > 8 {
				t.Errorf("%s corrupted: orientation %d", name, o)
			}
		}
	}
}
