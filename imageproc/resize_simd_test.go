package imageproc

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestResizeSIMD checks the AVX2 resampling passes against the plain Go ones
// on random images, shrinking and enlarging, with both roundings.
func TestResizeSIMD(t *testing.T) {
	if !useResizeAVX2 {
		t.Skip("no SIMD resampling on this CPU: only the plain Go passes exist here")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 300 {
		img := NewRGB(1+rng.IntN(200), 1+rng.IntN(120))
		for j := range img.Pix {
			img.Pix[j] = uint8(rng.IntN(256))
		}
		w, h := 1+rng.IntN(150), 1+rng.IntN(150)
		if i%10 == 0 {
			w, h = img.W/7+1, img.H/5+1 // wide filters: several tap groups
		}
		r := Rounding(i % 2)
		got := Resize(img, w, h, r)
		useResizeAVX2 = false
		want := Resize(img, w, h, r)
		useResizeAVX2 = true
		if !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("%dx%d -> %dx%d rounding %d: AVX2 differs from plain Go", img.W, img.H, w, h, r)
		}
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
