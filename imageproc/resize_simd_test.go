package imageproc

import (
	"bytes"
	"math/rand/v2"
	"runtime"
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

// TestResizeMemory: an image far taller than wide (Pillow's order would make
// an intermediate of 896 x its height) or far wider than tall resizes with
// memory in proportion to its input and output. Before, 1 x 500,000 took
// 1.35 GB and 1 x 64,000,000 died allocating 172 GB.
func TestResizeMemory(t *testing.T) {
	for _, size := range [][2]int{{1, 500_000}, {3, 200_000}, {500_000, 1}, {2, 2_000_000}} {
		img := NewRGB(size[0], size[1])
		for i := range img.Pix {
			img.Pix[i] = uint8(i * 7)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out := Resize(img, 896, 896, RoundingTransformers)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		// Input and output pixels, the weight tables (a few bytes per input
		// pixel along the long side) and slack.
		bound := uint64(8*len(img.Pix) + 4*len(out.Pix) + 4<<20)
		if alloc > bound {
			t.Errorf("%dx%d -> 896x896 allocated %d MB, want at most %d MB", size[0], size[1], alloc>>20, bound>>20)
		}
		t.Logf("%dx%d: %.1f MB", size[0], size[1], float64(alloc)/(1<<20))
	}
}

// TestResizePassOrder: where Resize takes the vertical pass first, it is
// within one level of Pillow's order (the intermediate rounds differently),
// and ordinary images keep Pillow's order.
func TestResizePassOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range [][2]int{{1, 9000}, {3, 5000}, {17, 20000}, {100, 40000}} {
		img := NewRGB(size[0], size[1])
		for i := range img.Pix {
			img.Pix[i] = uint8(rng.IntN(256))
		}
		if !verticalFirst(img.W, img.H, 896, 896) {
			t.Fatalf("%dx%d: Pillow's order", img.W, img.H)
		}
		for _, r := range []Rounding{RoundingTransformers, RoundingPIL} {
			got, want := Resize(img, 896, 896, r), resize(img, 896, 896, r, false)
			worst := 0
			for i := range got.Pix {
				worst = max(worst, int(got.Pix[i])-int(want.Pix[i]), int(want.Pix[i])-int(got.Pix[i]))
			}
			if worst > 1 {
				t.Errorf("%dx%d rounding %d: %d levels from Pillow's order", img.W, img.H, r, worst)
			}
		}
	}
	for _, size := range [][2]int{{500, 1400}, {224, 2000}, {600, 600}, {1800, 600}, {100, 400}, {1, 1}, {4000, 3000}} {
		if verticalFirst(size[0], size[1], 896, 896) {
			t.Errorf("%dx%d: not Pillow's order", size[0], size[1])
		}
	}
}
