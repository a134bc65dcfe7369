package imageproc

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"testing"

	"github.com/medgemma/medgemma/imageproc/internal/imgtest"
)

func benchPNG16(b *testing.B, w, h int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	m := image.NewGray16(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetGray16(x, y, color.Gray16{uint16(x*40000/w + y*20000/h + rng.IntN(512))})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func benchPreprocess(b *testing.B, data []byte) {
	cfg := DefaultConfig()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		img, _, err := Decode(data, Options{})
		if err != nil {
			b.Fatal(err)
		}
		imgs, err := Prepare(img, cfg, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := PixelValues(imgs, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPreprocessJPEG2048 decodes a 2048x2048 colour JPEG and prepares
// the 896x896 pixel values. Run with -cpu 1 for the single-core figure.
func BenchmarkPreprocessJPEG2048(b *testing.B) { benchPreprocess(b, imgtest.PhotoJPEG(2048, 2048)) }

// BenchmarkPreprocessPNG16 does the same for a 1024x1024 16-bit gray PNG.
func BenchmarkPreprocessPNG16(b *testing.B) { benchPreprocess(b, benchPNG16(b, 1024, 1024)) }

func BenchmarkResize2048(b *testing.B) {
	img := NewRGB(2048, 2048)
	for b.Loop() {
		Resize(img, 896, 896, RoundingTransformers)
	}
}
