package main

import (
	"fmt"
	"image/png"
	"io"
	"os"

	"github.com/medgemma/medgemma/imageproc"
)

const preprocessUsage = `Usage:
  medgemma preprocess [--model DIR] --image FILE [--pan-and-scan] [--pad-square]
                      [--window NAME|CENTER,WIDTH] [--frame N] --out PREFIX

Decodes an image (PNG, JPEG, GIF, BMP, TIFF, WebP, DICOM) and prepares it
exactly as the model gets it. Writes the 8-bit RGB image(s) the model sees as
PREFIX.png, or PREFIX.K.png with pan-and-scan crops (K=0 the whole image), and
prints the shape of the pixel-value tensor. Settings come from
DIR/preprocessor_config.json, else MedGemma's (896x896).

Flags:
`

func runPreprocess(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("preprocess", preprocessUsage, stderr)
	model := fs.String("model", "", "checkpoint `DIR` with preprocessor_config.json")
	fs.StringVar(model, "m", "", "shorthand for --model")
	imagePath := fs.String("image", "", "image `FILE`")
	panScan := fs.Bool("pan-and-scan", false, "add pan-and-scan crops for images with a large aspect ratio")
	pad := fs.Bool("pad-square", false, "centre the image on a black square before resizing (Google's serving path)")
	window := fs.String("window", "", "grayscale window: a preset (lung, mediastinum, bone, brain, abdomen, soft-tissue) or CENTER,WIDTH")
	frame := fs.Int("frame", 0, "DICOM frame to use (0 is the first)")
	maxPixels := fs.Int64("max-pixels", imageproc.DefaultMaxPixels, "refuse images with more pixels than this")
	out := fs.String("out", "", "output `PREFIX` for the PNG file(s)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("unexpected argument %q", pos[0])
	case *imagePath == "":
		return usagef("--image FILE is required")
	case *out == "":
		return usagef("--out PREFIX is required")
	case *frame < 0:
		return usagef("--frame must be 0 or more")
	case *maxPixels <= 0:
		return usagef("--max-pixels must be positive")
	}
	opts := imageproc.Options{Frame: *frame, MaxPixels: *maxPixels}
	if *window != "" {
		w, err := imageproc.ParseWindow(*window)
		if err != nil {
			return usagef("--window: %v", err)
		}
		opts.Window = &w
	}
	cfg := imageproc.DefaultConfig()
	if *model != "" {
		// A directory without preprocessor_config.json takes MedGemma's
		// settings; a path that is not a directory is a mistake to report.
		if st, err := os.Stat(*model); err != nil || !st.IsDir() {
			return fmt.Errorf("--model %s is not a checkpoint directory", *model)
		}
		if cfg, err = imageproc.LoadConfig(*model); err != nil {
			return err
		}
	}
	if *panScan {
		cfg.PanAndScan.Enabled = true
	}

	img, info, err := imageproc.DecodeFile(*imagePath, opts)
	if err != nil {
		return err
	}
	imgs, err := imageproc.Prepare(img, cfg, *pad)
	if err != nil {
		return err
	}
	desc := fmt.Sprintf("%s %s %dx%d", info.Format, info.Mode, info.Width, info.Height)
	if info.Orientation != 0 {
		desc += fmt.Sprintf(", EXIF orientation %d applied: %dx%d", info.Orientation, img.W, img.H)
	}
	if d := info.DICOM; d != nil {
		desc = fmt.Sprintf("dicom %s %s %dx%d, frame %d of %d, %s", d.Modality, d.Photometric, d.Columns, d.Rows, d.Frame, d.Frames, d.Rendering)
	}
	fmt.Fprintf(stdout, "input: %s (%s)\n", *imagePath, desc)
	for k, m := range imgs {
		name := *out + ".png"
		if len(imgs) > 1 {
			name = fmt.Sprintf("%s.%d.png", *out, k)
		}
		if err := writePNG(name, m); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", name)
	}
	fmt.Fprintf(stdout, "pixel_values shape: [%d, 3, %d, %d]\n", len(imgs), cfg.Height, cfg.Width)
	return nil
}

func writePNG(name string, m *imageproc.RGB) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := png.Encode(f, m.Image()); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}
