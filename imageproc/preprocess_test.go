package imageproc

import (
	"strings"
	"testing"
)

func TestPadSquare(t *testing.T) {
	img := NewRGB(3, 1)
	for i := range img.Pix {
		img.Pix[i] = 9
	}
	sq := PadSquare(img)
	if sq.W != 3 || sq.H != 3 {
		t.Fatalf("%dx%d", sq.W, sq.H)
	}
	for y := range 3 {
		r, _, _ := sq.At(0, y)
		if want := map[bool]uint8{true: 9, false: 0}[y == 1]; r != want {
			t.Errorf("row %d = %d, want %d (centred, black around)", y, r, want)
		}
	}
	// 2x5: the left margin is (5-2)/2 = 1.
	narrow := NewRGB(2, 5)
	for i := range narrow.Pix {
		narrow.Pix[i] = 1
	}
	tall := PadSquare(narrow)
	if r, _, _ := tall.At(0, 0); r != 0 {
		t.Error("left margin is not black")
	}
	if r, _, _ := tall.At(1, 0); r != 1 {
		t.Error("image does not start at x=1")
	}
	if r, _, _ := tall.At(3, 0); r != 0 {
		t.Error("right margin is not black")
	}
}

func TestCrops(t *testing.T) {
	p := DefaultConfig().PanAndScan
	for _, c := range []struct {
		w, h, n, cw, ch int
	}{
		{1800, 600, 3, 600, 600},  // ratio 3
		{500, 1400, 3, 500, 467},  // portrait: ceil(1400/3) = 467, the last crop is 466
		{1000, 900, 0, 0, 0},      // ratio 1.11 < 1.2
		{600, 400, 2, 300, 400},   // round(1.5) = 2
		{640, 256, 2, 320, 256},   // floor(640/256) = 2 caps round(2.5) = 3
		{300, 100, 0, 0, 0},       // crops of 150 < 256
		{5000, 500, 4, 1250, 500}, // at most 4
	} {
		crops := Crops(NewRGB(c.w, c.h), p)
		if len(crops) != c.n {
			t.Errorf("%dx%d: %d crops, want %d", c.w, c.h, len(crops), c.n)
			continue
		}
		if c.n > 0 && (crops[0].W != c.cw || crops[0].H != c.ch) {
			t.Errorf("%dx%d: first crop %dx%d, want %dx%d", c.w, c.h, crops[0].W, crops[0].H, c.cw, c.ch)
		}
	}
}

func TestParseWindow(t *testing.T) {
	for in, want := range map[string]Window{
		"lung": Presets["lung"], "Soft Tissue": Presets["soft-tissue"], "40,80": {Center: 40, Width: 80}, " -600 , 1500 ": {Center: -600, Width: 1500},
	} {
		if got, err := ParseWindow(in); err != nil || got != want {
			t.Errorf("ParseWindow(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"liver", "40", "40,0", "a,b", "40,NaN"} {
		if _, err := ParseWindow(in); err == nil {
			t.Errorf("ParseWindow(%q): no error", in)
		}
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"size": {"height": 224, "width": 224}, "image_mean": [0.1], "do_pan_and_scan": true}`))
	if err != nil || cfg.Width != 224 || cfg.Mean != [3]float64{0.1, 0.1, 0.1} || !cfg.PanAndScan.Enabled || cfg.Std != [3]float64{0.5, 0.5, 0.5} {
		t.Errorf("%+v %v", cfg, err)
	}
	for in, want := range map[string]string{
		`{"resample": 3}`:          "resample 3 is not supported",
		`{"image_std": [0, 1, 1]}`: "image_std has a zero",
		`{"image_mean": [1, 2]}`:   "image_mean has 2 values",
		`{"size": 5}`:              "cannot unmarshal",
	} {
		if _, err := ParseConfig([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
