package imageproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Config is the image processor's configuration, as preprocessor_config.json
// gives it.
type Config struct {
	Width, Height int        // size after resizing (896 x 896 for MedGemma)
	Resample      int        // PIL filter id; only 2 (BILINEAR) is supported
	DoResize      bool       // resize to Width x Height
	DoRescale     bool       // multiply by RescaleFactor
	RescaleFactor float64    // 1/255
	DoNormalize   bool       // subtract Mean, divide by Std, per channel
	Mean, Std     [3]float64 // 0.5 each for MedGemma
	PanAndScan    PanAndScan
	// Rounding of the resize weights; RoundingTransformers by default.
	Rounding Rounding
}

// PanAndScan cuts images with a large aspect ratio into crops that the model
// sees after the whole image (Gemma 3's "pan and scan"). Off by default, as in
// transformers.
type PanAndScan struct {
	Enabled     bool
	MinCropSize int     // pixels; 256 by default
	MaxCrops    int     // 4 by default
	MinRatio    float64 // aspect ratio that activates it; 1.2 by default
}

// DefaultConfig is MedGemma's preprocessor configuration, with transformers'
// pan-and-scan defaults (used only when pan and scan is switched on).
func DefaultConfig() Config {
	return Config{
		Width: 896, Height: 896, Resample: 2,
		DoResize: true, DoRescale: true, RescaleFactor: 1.0 / 255, DoNormalize: true,
		Mean: [3]float64{0.5, 0.5, 0.5}, Std: [3]float64{0.5, 0.5, 0.5},
		PanAndScan: PanAndScan{MinCropSize: 256, MaxCrops: 4, MinRatio: 1.2},
	}
}

// LoadConfig reads DIR/preprocessor_config.json; without one it returns
// DefaultConfig.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "preprocessor_config.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultConfig(), nil
	}
	if err != nil {
		return Config{}, err
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig reads a preprocessor_config.json; fields it lacks (or sets to
// null) keep MedGemma's values.
func ParseConfig(data []byte) (Config, error) {
	var j struct {
		Size *struct {
			Height, Width int
		} `json:"size"`
		Resample       *int       `json:"resample"`
		DoResize       *bool      `json:"do_resize"`
		DoRescale      *bool      `json:"do_rescale"`
		RescaleFactor  *float64   `json:"rescale_factor"`
		DoNormalize    *bool      `json:"do_normalize"`
		ImageMean      *[]float64 `json:"image_mean"`
		ImageStd       *[]float64 `json:"image_std"`
		DoPanAndScan   *bool      `json:"do_pan_and_scan"`
		PanMinCropSize *int       `json:"pan_and_scan_min_crop_size"`
		PanMaxCrops    *int       `json:"pan_and_scan_max_num_crops"`
		PanMinRatio    *float64   `json:"pan_and_scan_min_ratio_to_activate"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return Config{}, err
	}
	c := DefaultConfig()
	set := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	if j.Size != nil {
		c.Width, c.Height = j.Size.Width, j.Size.Height
	}
	if j.Resample != nil {
		c.Resample = *j.Resample
	}
	set(&c.DoResize, j.DoResize)
	set(&c.DoRescale, j.DoRescale)
	set(&c.DoNormalize, j.DoNormalize)
	set(&c.PanAndScan.Enabled, j.DoPanAndScan)
	if j.RescaleFactor != nil {
		c.RescaleFactor = *j.RescaleFactor
	}
	for _, m := range []struct {
		name string
		src  *[]float64
		dst  *[3]float64
	}{{"image_mean", j.ImageMean, &c.Mean}, {"image_std", j.ImageStd, &c.Std}} {
		if m.src == nil {
			continue
		}
		switch len(*m.src) {
		case 1:
			*m.dst = [3]float64{(*m.src)[0], (*m.src)[0], (*m.src)[0]}
		case 3:
			copy(m.dst[:], *m.src)
		default:
			return Config{}, fmt.Errorf("%s has %d values, want 1 or 3", m.name, len(*m.src))
		}
	}
	if j.PanMinCropSize != nil {
		c.PanAndScan.MinCropSize = *j.PanMinCropSize
	}
	if j.PanMaxCrops != nil {
		c.PanAndScan.MaxCrops = *j.PanMaxCrops
	}
	if j.PanMinRatio != nil {
		c.PanAndScan.MinRatio = *j.PanMinRatio
	}
	return c, c.Validate()
}

// Validate checks that the configuration is one this package implements.
func (c Config) Validate() error {
	switch {
	case c.Width <= 0 || c.Height <= 0 || c.Width > 8192 || c.Height > 8192:
		return fmt.Errorf("size %dx%d is out of range", c.Width, c.Height)
	case c.DoResize && c.Resample != 2:
		return fmt.Errorf("resample %d is not supported (2, bilinear)", c.Resample)
	case c.Std[0] == 0 || c.Std[1] == 0 || c.Std[2] == 0:
		return errors.New("image_std has a zero")
	case c.PanAndScan.MinCropSize < 1 || c.PanAndScan.MaxCrops < 1 || !(c.PanAndScan.MinRatio > 0):
		return fmt.Errorf("pan-and-scan settings out of range: %+v", c.PanAndScan)
	}
	return nil
}
