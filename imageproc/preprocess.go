package imageproc

import (
	"fmt"
	"math"
)

// Crops returns the pan-and-scan crops of an image as transformers computes
// them: none unless the aspect ratio reaches MinRatio; otherwise
// round(aspect ratio) crops along the long side (at least 2, at most
// MaxCrops, and no more than MinCropSize allows), each ceil(side/n) long, left
// to right or top to bottom. The last crop is cut short at the edge.
func Crops(img *RGB, p PanAndScan) []*RGB {
	w, h := img.W, img.H
	nw, nh := 1, 1
	if w >= h {
		if float64(w)/float64(h) < p.MinRatio {
			return nil
		}
		nw = int(math.Floor(float64(w)/float64(h) + 0.5))
		nw = min(int(math.Floor(float64(w)/float64(p.MinCropSize))), nw)
		nw = min(p.MaxCrops, max(2, nw))
	} else {
		if float64(h)/float64(w) < p.MinRatio {
			return nil
		}
		nh = int(math.Floor(float64(h)/float64(w) + 0.5))
		nh = min(int(math.Floor(float64(h)/float64(p.MinCropSize))), nh)
		nh = min(p.MaxCrops, max(2, nh))
	}
	cw := int(math.Ceil(float64(w) / float64(nw)))
	ch := int(math.Ceil(float64(h) / float64(nh)))
	if min(cw, ch) < p.MinCropSize {
		return nil
	}
	var crops []*RGB
	for i := range nh {
		for j := range nw {
			crops = append(crops, img.Crop(j*cw, i*ch, j*cw+cw, i*ch+ch))
		}
	}
	return crops
}

// PadSquare centres the image on a black square as Google's serving path does
// before resizing (the HF processor stretches instead). The left/top margin
// is half the difference, rounded down.
func PadSquare(img *RGB) *RGB {
	s := max(img.W, img.H)
	if img.W == img.H {
		return img
	}
	out := NewRGB(s, s)
	x0, y0 := (s-img.W)/2, (s-img.H)/2
	for y := range img.H {
		copy(out.Pix[((y+y0)*s+x0)*3:], img.Pix[y*img.W*3:(y+1)*img.W*3])
	}
	return out
}

// Prepare returns the 8-bit images the model sees for one input image: the
// whole image, then its pan-and-scan crops when enabled, each resized to the
// configured size. With padSquare the image is first centred on a black
// square.
func Prepare(img *RGB, cfg Config, padSquare bool) ([]*RGB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if img.W <= 0 || img.H <= 0 {
		return nil, fmt.Errorf("image has no pixels (%dx%d)", img.W, img.H)
	}
	if padSquare {
		img = PadSquare(img)
	}
	out := []*RGB{img}
	if cfg.PanAndScan.Enabled {
		out = append(out, Crops(img, cfg.PanAndScan)...)
	}
	if cfg.DoResize {
		for i, m := range out {
			out[i] = Resize(m, cfg.Width, cfg.Height, cfg.Rounding)
		}
	}
	return out, nil
}

// PixelValues rescales and normalizes prepared images into float32 values laid
// out [N, 3, H, W], channel first, as the vision tower reads them:
// (v * RescaleFactor - Mean) / Std, computed in float64 and rounded once.
func PixelValues(imgs []*RGB, cfg Config) ([]float32, error) {
	if len(imgs) == 0 {
		return nil, nil
	}
	w, h := imgs[0].W, imgs[0].H
	var lut [3][256]float32
	for c := range 3 {
		for v := range 256 {
			x := float64(v)
			if cfg.DoRescale {
				x *= cfg.RescaleFactor
			}
			if cfg.DoNormalize {
				x = (x - cfg.Mean[c]) / cfg.Std[c]
			}
			lut[c][v] = float32(x)
		}
	}
	out := make([]float32, len(imgs)*3*w*h)
	plane := w * h
	for n, m := range imgs {
		if m.W != w || m.H != h {
			return nil, fmt.Errorf("image %d is %dx%d, image 0 is %dx%d", n, m.W, m.H, w, h)
		}
		base := n * 3 * plane
		r := out[base : base+plane]
		g := out[base+plane : base+2*plane]
		b := out[base+2*plane : base+3*plane]
		pix := m.Pix[:3*plane]
		for i := range r {
			p := pix[3*i : 3*i+3 : 3*i+3]
			r[i], g[i], b[i] = lut[0][p[0]], lut[1][p[1]], lut[2][p[2]]
		}
	}
	return out, nil
}
