package imageproc

import (
	"path/filepath"
	"testing"
)

// TestJPEGAgainstPIL decodes files written by libjpeg-turbo's cjpeg (made by
// testdata/jpeg/make.sh) and compares them with Pillow's decoding: every
// chroma layout, restart intervals in MCUs and in rows, optimized Huffman
// tables, odd sizes that leave partial MCUs at the edges.
func TestJPEGAgainstPIL(t *testing.T) {
	for _, c := range []struct {
		file    string
		maxDiff int
	}{
		{"ycc420_restart.jpg", 0},
		{"ycc422_optimized.jpg", 0},
		{"ycc444_restart_rows.jpg", 0},
		{"gray_restart.jpg", 0},
		{"ycc440.jpg", 0},
		{"ycc411.jpg", 0},
		{"narrow420.jpg", 0},
		{"ycc_3x1.jpg", 0},
		{"ycc_2x4_progressive.jpg", 0},
		{"progressive.jpg", 0},
		{"progressive_restart.jpg", 0},
		{"progressive_gray.jpg", 0},
		{"rgb.jpg", 0}, // an Adobe marker with transform 0, components R, G, B
		{"cmyk_progressive.jpg", 0},
	} {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", "jpeg", c.file)
			img, _, err := DecodeFile(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			m, mean := diff(t, img, loadPNG(t, path+".pil.png"))
			t.Logf("max %d mean %.4f", m, mean)
			if m > c.maxDiff {
				t.Errorf("max difference %d, mean %.4f; want at most %d", m, mean, c.maxDiff)
			}
		})
	}
}
