package imageproc

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/medgemma/medgemma/internal/npy"
)

func refPath(name string) string { return filepath.Join("testdata", "images", name) }

func decodeRef(t testing.TB, name string) *RGB {
	t.Helper()
	img, _, err := DecodeFile(refPath(name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func loadExpected(t testing.TB, name string) *RGB {
	t.Helper()
	return loadPNG(t, refPath(filepath.Join("expected", name)))
}

// diff returns the largest and the mean absolute difference.
func diff(t testing.TB, a, b *RGB) (maxd int, mean float64) {
	t.Helper()
	if a.W != b.W || a.H != b.H {
		t.Fatalf("sizes differ: %dx%d and %dx%d", a.W, a.H, b.W, b.H)
	}
	sum := 0
	for i := range a.Pix {
		d := int(a.Pix[i]) - int(b.Pix[i])
		d = max(d, -d)
		sum += d
		maxd = max(maxd, d)
	}
	return maxd, float64(sum) / float64(len(a.Pix))
}

// TestReferenceResize compares the 896x896 image the processor computed for
// every reference input. PNG inputs must match exactly; the "sane" references
// are PIL's convert("RGB") for RGBA and palette images, and round(v/257) for
// 16-bit gray.
func TestReferenceResize(t *testing.T) {
	cfg := DefaultConfig()
	for _, c := range []struct{ input, expected string }{
		{"cxr_like_gray_1024x1024.png", "slow"},
		{"grad_rgb_640x480.png", "slow"},
		{"tiny_rgb_20x30.png", "slow"},
		{"tall_gray_500x1400.png", "slow"},
		{"wide_rgb_1800x600.png", "slow"},
		{"rgba_300x200.png", "sane"},
		{"palette_256x256.png", "sane"},
		{"gray16_512x640.png", "sane"},
	} {
		imgs, err := Prepare(decodeRef(t, c.input), cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		if m, mean := diff(t, imgs[0], loadExpected(t, c.input+"."+c.expected+".u8.png")); m != 0 {
			t.Errorf("%s: max difference %d (mean %.5f), want identical", c.input, m, mean)
		}
	}
}

// TestReferenceJPEG checks the colour JPEG against the reference: decoded
// with libjpeg's arithmetic (islow IDCT, fancy chroma upsampling, its
// YCbCr tables) and resized, it is the processor's output exactly.
func TestReferenceJPEG(t *testing.T) {
	imgs, err := Prepare(decodeRef(t, "skin_photo_800x600.jpg"), DefaultConfig(), false)
	if err != nil {
		t.Fatal(err)
	}
	m, mean := diff(t, imgs[0], loadExpected(t, "skin_photo_800x600.jpg.slow.u8.png"))
	t.Logf("skin_photo_800x600.jpg: max difference %d, mean %.4f", m, mean)
	if m != 0 {
		t.Errorf("JPEG differs from the reference: max %d, mean %.4f", m, mean)
	}
}

// TestReferencePILRounding checks the Pillow rounding mode against the
// differences the reference recorded between Pillow and the processor.
func TestReferencePILRounding(t *testing.T) {
	for _, c := range []struct {
		input string
		max   int
	}{{"grad_rgb_640x480.png", 0}, {"wide_rgb_1800x600.png", 0}, {"cxr_like_gray_1024x1024.png", 1}, {"tiny_rgb_20x30.png", 1}} {
		got := Resize(decodeRef(t, c.input), 896, 896, RoundingPIL)
		if m, _ := diff(t, got, loadExpected(t, c.input+".slow.u8.png")); m != c.max {
			t.Errorf("%s: PIL rounding differs by %d, the reference recorded %d", c.input, m, c.max)
		}
	}
}

func TestReferencePanAndScan(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PanAndScan.Enabled = true
	for _, name := range []string{"wide_rgb_1800x600.png", "tall_gray_500x1400.png"} {
		imgs, err := Prepare(decodeRef(t, name), cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 4 {
			t.Fatalf("%s: %d images, want the whole image and 3 crops", name, len(imgs))
		}
		for k, img := range imgs {
			want := loadExpected(t, name+".panscan.u8."+string(rune('0'+k))+".png")
			if m, mean := diff(t, img, want); m != 0 {
				t.Errorf("%s crop %d: max difference %d (mean %.5f)", name, k, m, mean)
			}
		}
	}
}

// TestReferencePixelValues runs the whole pipeline with the tiny checkpoint's
// preprocessor_config.json (112x112) against the pixel_values transformers fed
// the model.
func TestReferencePixelValues(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("testdata", "tiny"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Width != 112 || cfg.Height != 112 || cfg.PanAndScan.Enabled {
		t.Fatalf("config %+v", cfg)
	}
	want, err := npy.ReadFile(filepath.Join("testdata", "tiny", "pixel_values.f32.npy"))
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := Prepare(decodeRef(t, "cxr_like_gray_1024x1024.png"), cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := PixelValues(imgs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want.Data) || len(want.Data) != 3*112*112 {
		t.Fatalf("%d values, want %d (shape %v)", len(got), len(want.Data), want.Shape)
	}
	worst := 0.0
	for i := range got {
		worst = max(worst, math.Abs(float64(got[i]-want.Data[i])))
	}
	if worst > 1e-6 {
		t.Errorf("pixel values differ by up to %g", worst)
	}
}
