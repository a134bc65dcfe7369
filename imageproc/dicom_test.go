package imageproc

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/imageproc/dicom"
	sdicom "github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/frame"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// synthDICOM writes a small DICOM file with the given attributes and 16-bit
// (or 8-bit when bits is 8) stored values.
type synthDICOM struct {
	modality, photometric, ts string
	rows, cols, samples       int
	bits, stored              int
	signed                    bool
	slope, intercept          string // empty: absent
	windowCenter, windowWidth string
	planar                    int
	values                    []int // stored bit patterns, one per sample
	frames                    int
}

func (s synthDICOM) bytes(t *testing.T) []byte {
	t.Helper()
	if s.ts == "" {
		s.ts = "1.2.840.10008.1.2.1" // explicit VR little endian
	}
	if s.frames == 0 {
		s.frames = 1
	}
	if s.samples == 0 {
		s.samples = 1
	}
	if s.stored == 0 {
		s.stored = s.bits
	}
	pixrep := 0
	if s.signed {
		pixrep = 1
	}
	el := func(tg tag.Tag, v any) *sdicom.Element {
		e, err := sdicom.NewElement(tg, v)
		if err != nil {
			t.Fatalf("%v: %v", tg, err)
		}
		return e
	}
	var frames []*frame.Frame
	per := s.rows * s.cols * s.samples
	for f := range s.frames {
		vals := s.values[f*per : (f+1)*per]
		var nf frame.INativeFrame
		if s.bits == 8 {
			raw := make([]uint8, len(vals))
			for i, v := range vals {
				raw[i] = uint8(v)
			}
			nf = &frame.NativeFrame[uint8]{RawData: raw, InternalBitsPerSample: 8, InternalRows: s.rows, InternalCols: s.cols, InternalSamplesPerPixel: s.samples}
		} else {
			raw := make([]uint16, len(vals))
			for i, v := range vals {
				raw[i] = uint16(v)
			}
			nf = &frame.NativeFrame[uint16]{RawData: raw, InternalBitsPerSample: 16, InternalRows: s.rows, InternalCols: s.cols, InternalSamplesPerPixel: s.samples}
		}
		frames = append(frames, &frame.Frame{NativeData: nf})
	}
	elems := []*sdicom.Element{
		el(tag.MediaStorageSOPClassUID, []string{"1.2.840.10008.5.1.4.1.1.2"}),
		el(tag.MediaStorageSOPInstanceUID, []string{"1.2.3.4.5"}),
		el(tag.TransferSyntaxUID, []string{s.ts}),
		el(tag.Modality, []string{s.modality}),
		el(tag.SamplesPerPixel, []int{s.samples}),
		el(tag.PhotometricInterpretation, []string{s.photometric}),
		el(tag.Rows, []int{s.rows}),
		el(tag.Columns, []int{s.cols}),
		el(tag.BitsAllocated, []int{s.bits}),
		el(tag.BitsStored, []int{s.stored}),
		el(tag.HighBit, []int{s.stored - 1}),
		el(tag.PixelRepresentation, []int{pixrep}),
	}
	if s.samples == 3 {
		elems = append(elems, el(tag.PlanarConfiguration, []int{s.planar}))
	}
	if s.frames > 1 {
		elems = append(elems, el(tag.NumberOfFrames, []string{strings.TrimSpace(string(rune('0' + s.frames)))}))
	}
	if s.slope != "" {
		elems = append(elems, el(tag.RescaleSlope, []string{s.slope}), el(tag.RescaleIntercept, []string{s.intercept}))
	}
	if s.windowCenter != "" {
		elems = append(elems, el(tag.WindowCenter, []string{s.windowCenter}), el(tag.WindowWidth, []string{s.windowWidth}))
	}
	elems = append(elems, el(tag.PixelData, sdicom.PixelDataInfo{Frames: frames}))
	var buf bytes.Buffer
	if err := sdicom.Write(&buf, sdicom.Dataset{Elements: elems}, sdicom.SkipVRVerification()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func grayOf(t *testing.T, img *RGB) []int {
	t.Helper()
	out := make([]int, img.W*img.H)
	for i := range out {
		r, g, b := img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2]
		if r != g || g != b {
			t.Fatalf("pixel %d is not gray: %d %d %d", i, r, g, b)
		}
		out[i] = int(r)
	}
	return out
}

func TestDICOMWindowingArithmetic(t *testing.T) {
	// CT, signed 12 bits stored in 16: the bit patterns of -1024, 0, 40,
	// 1000, -2048 (0xF800 masked to 12 bits is 0x800, i.e. -2048), 175.
	ct := synthDICOM{modality: "CT", photometric: "MONOCHROME2", rows: 2, cols: 3, bits: 16, stored: 12, signed: true,
		slope: "1", intercept: "-1000", values: []int{0x0C00, 0, 40, 1000, 0xF800, 175 + 1000}}
	img, info, err := Decode(ct.bytes(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// HU = stored - 1000: -2024, -1000, -960, 0, -3048, 175.
	if info.DICOM.Min != -3048 || info.DICOM.Max != 175 {
		t.Errorf("HU range %v..%v, want -3048..175", info.DICOM.Min, info.DICOM.Max)
	}
	// Red: window 0,2048 -> [-1024, 1024]; green: 175,80 -> [135, 215]; blue: 40,80 -> [0, 80].
	red := func(hu float64) uint8 { // 255*(hu+1024)/2048, half to even
		return Window{Center: 0, Width: 2048}.Apply(hu)
	}
	want := [][3]uint8{{0, 0, 0}, {red(-1000), 0, 0}, {red(-960), 0, 0}, {128, 0, 0}, {0, 0, 0}, {red(175), 128, 255}}
	// red(-1000) = 255*24/2048 = 2.988 -> 3; red(-960) = 7.97 -> 8; red(0) = 127.5 -> 128 (half to even).
	if red(-1000) != 3 || red(-960) != 8 || red(0) != 128 || red(175) != 149 {
		t.Errorf("red window values %d %d %d %d", red(-1000), red(-960), red(0), red(175))
	}
	for i, w := range want {
		r, g, b := img.Pix[3*i], img.Pix[3*i+1], img.Pix[3*i+2]
		if [3]uint8{r, g, b} != w {
			t.Errorf("CT pixel %d = %d,%d,%d, want %v", i, r, g, b, w)
		}
	}
	if info.DICOM.Rendering != "CT windows 0,2048 | 175,80 | 40,80 as RGB" {
		t.Errorf("rendering %q", info.DICOM.Rendering)
	}

	// A user window on the same CT: brain 40,80 -> [0, 80] as gray.
	brain := Presets["brain"]
	img, _, err = Decode(ct.bytes(t), Options{Window: &brain})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := grayOf(t, img), []int{0, 0, 0, 0, 0, 255}; !equalInts(got, want) {
		t.Errorf("brain window = %v, want %v", got, want)
	}
	w := Window{Center: 0, Width: 2000} // [-1000, 1000]: -960 -> 255*40/2000 = 5.1 -> 5
	img, _, _ = Decode(ct.bytes(t), Options{Window: &w})
	if got := grayOf(t, img); got[2] != 5 || got[3] != 128 || got[1] != 0 {
		t.Errorf("window 0,2000 = %v", got)
	}

	// CR, MONOCHROME1, 16-bit with the file's window 500,1000 -> [0, 1000].
	cr := synthDICOM{modality: "CR", photometric: "MONOCHROME1", rows: 1, cols: 4, bits: 16,
		windowCenter: "500", windowWidth: "1000", values: []int{0, 250, 1000, 3000}}
	img, info, err = Decode(cr.bytes(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 250 -> 63.75 -> 64; inverted: 255, 191, 0, 0.
	if got, want := grayOf(t, img), []int{255, 191, 0, 0}; !equalInts(got, want) {
		t.Errorf("CR window + MONOCHROME1 = %v, want %v (%s)", got, want, info.DICOM.Rendering)
	}

	// MR 16-bit without window: stretched min..max -> 0..65535 (truncated),
	// then round(v/257).
	mr := synthDICOM{modality: "MR", photometric: "MONOCHROME2", rows: 1, cols: 4, bits: 16, values: []int{100, 200, 300, 1100}}
	img, _, err = Decode(mr.bytes(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// (100/1000)*65535 = 6553.5 -> 6553 -> 25.5 -> round(6553/257=25.498) = 25; 200 -> 13107 -> 51; 1100 -> 255.
	if got, want := grayOf(t, img), []int{0, 25, 51, 255}; !equalInts(got, want) {
		t.Errorf("MR stretch = %v, want %v", got, want)
	}

	// 8-bit RGB, planar: R plane, G plane, B plane.
	rgb := synthDICOM{modality: "SM", photometric: "RGB", rows: 1, cols: 2, samples: 3, bits: 8, planar: 1, values: []int{10, 20, 30, 40, 50, 60}}
	img, _, err = Decode(rgb.bytes(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img.Pix, []byte{10, 30, 50, 20, 40, 60}) {
		t.Errorf("planar RGB = %v", img.Pix)
	}

	// Multi-frame: frame 1 of 2.
	mf := synthDICOM{modality: "OT", photometric: "MONOCHROME2", rows: 1, cols: 2, bits: 8, frames: 2, values: []int{1, 2, 3, 4}}
	img, info, err = Decode(mf.bytes(t), Options{Frame: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := grayOf(t, img); !equalInts(got, []int{3, 4}) || info.DICOM.Frames != 2 || info.DICOM.Frame != 1 {
		t.Errorf("frame 1 = %v (%+v)", got, info.DICOM)
	}
	if _, _, err := Decode(mf.bytes(t), Options{Frame: 2}); err == nil || !strings.Contains(err.Error(), "frame 2 requested, the file has 2") {
		t.Errorf("frame out of range: %v", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDICOMErrors(t *testing.T) {
	good := synthDICOM{modality: "CT", photometric: "MONOCHROME2", rows: 2, cols: 2, bits: 16, values: []int{1, 2, 3, 4}}
	for _, c := range []struct {
		name string
		d    synthDICOM
		opts Options
		kind error
		want string
	}{
		{"jpeg2000", func() synthDICOM { d := good; d.ts = "1.2.840.10008.1.2.4.90"; return d }(), Options{}, ErrUnsupported, "transfer syntax 1.2.840.10008.1.2.4.90 (JPEG 2000 Lossless) is not supported"},
		{"photometric", func() synthDICOM { d := good; d.photometric = "PALETTE COLOR"; return d }(), Options{}, ErrUnsupported, "PhotometricInterpretation PALETTE COLOR is not supported"},
		{"too big", good, Options{MaxPixels: 3}, ErrTooLarge, "over the limit of 3"},
		{"window on colour", synthDICOM{modality: "SM", photometric: "RGB", rows: 1, cols: 1, samples: 3, bits: 8, values: []int{1, 2, 3}}, Options{Window: &Window{Center: 1, Width: 2}}, ErrOptions, "a window applies to grayscale"},
		{"frame", good, Options{Frame: 3}, ErrOptions, "frame 3 requested, the file has 1 frame(s)"},
		{"negative frame", good, Options{Frame: -1}, ErrOptions, "frames count from 0"},
	} {
		_, _, err := Decode(c.d.bytes(t), c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.kind) {
			t.Errorf("%s: error %v, want %q (%v)", c.name, err, c.want, c.kind)
		}
	}
	data := good.bytes(t)
	for _, n := range []int{140, 200, len(data) - 3} {
		if _, _, err := Decode(data[:n], Options{}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DICOM truncated to %d bytes: %v, want a corrupt-image error", n, err)
		}
	}
}

// TestRealDICOM decodes the DICOM files from Google's medgemma test data.
// The value ranges were cross-checked with pydicom.
func TestRealDICOM(t *testing.T) {
	for _, c := range []struct {
		file             string
		w, h             int
		modality, render string
		min, max         float64
		frames           int
	}{
		{"ct_test_series_image0.dcm", 512, 512, "CT", "CT windows", -2048, 0, 1},
		{"ct_test_series_image1.dcm", 512, 512, "CT", "CT windows", -2048, 0, 1},
		{"cxr_encapsulated_cxr.dcm", 1024, 1024, "CR", "8-bit values as stored", 0, 245, 1},
		{"wsi_test.dcm", 234, 117, "SM", "colour as stored", 0, 0, 1},
		{"wsi_multiframe_camelyon_challenge_image.dcm", 256, 256, "SM", "colour as stored", 0, 0, 15},
	} {
		img, info, err := DecodeFile(filepath.Join("testdata", "dicom", c.file), Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		d := info.DICOM
		if img.W != c.w || img.H != c.h || d.Modality != c.modality || d.Frames != c.frames || !strings.HasPrefix(d.Rendering, c.render) {
			t.Errorf("%s: %dx%d %s %d frames %q", c.file, img.W, img.H, d.Modality, d.Frames, d.Rendering)
		}
		if c.render != "colour as stored" && (d.Min != c.min || d.Max != c.max) {
			t.Errorf("%s: values %v..%v, want %v..%v", c.file, d.Min, d.Max, c.min, c.max)
		}
	}
	// The CT is air (-2048 HU) outside the blanked slice: black in all three windows.
	img, _, _ := DecodeFile(filepath.Join("testdata", "dicom", "ct_test_series_image0.dcm"), Options{})
	if r, g, b := img.At(0, 0); r != 0 || g != 0 || b != 0 {
		t.Errorf("CT corner = %d,%d,%d", r, g, b)
	}
	// The CR's JPEG decodes to the mean pydicom (libjpeg) gives, 72.51, within
	// the IDCT differences.
	img, _, _ = DecodeFile(filepath.Join("testdata", "dicom", "cxr_encapsulated_cxr.dcm"), Options{})
	sum := 0
	for i := 0; i < len(img.Pix); i += 3 {
		sum += int(img.Pix[i])
	}
	if mean := float64(sum) / float64(img.W*img.H); mean < 72.4 || mean > 72.6 {
		t.Errorf("CXR mean %.3f, pydicom says 72.514", mean)
	}
}

// TestDICOMLossless decodes JPEG lossless (predictors 1, 4, 7) and RLE
// copies of the reference CT slice (16-bit signed) and of an RGB slide tile,
// made with DCMTK (testdata/dicom/lossless/README.md): each must give the
// same values and the same rendering as its uncompressed source.
func TestDICOMLossless(t *testing.T) {
	dir := filepath.Join("testdata", "dicom", "lossless")
	for source, copies := range map[string][]string{
		filepath.Join("testdata", "dicom", "ct_test_series_image0.dcm"): {"ct_sv1.dcm", "ct_rle.dcm"},
		filepath.Join(dir, "synth_ct.dcm"):                              {"synth_sv1.dcm", "synth_sv2.dcm", "synth_sv3.dcm", "synth_sv4.dcm", "synth_sv5.dcm", "synth_sv6.dcm", "synth_sv7.dcm", "synth_rle.dcm"},
		filepath.Join(dir, "wsi_raw.dcm"):                               {"wsi_rle.dcm", "wsi_sv1.dcm"},
	} {
		want, wantInfo, err := DecodeFile(source, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range copies {
			got, info, err := DecodeFile(filepath.Join(dir, name), Options{})
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if !bytes.Equal(got.Pix, want.Pix) || got.W != want.W || got.H != want.H {
				t.Errorf("%s: rendering differs from its uncompressed source", name)
			}
			if a, b := storedValues(t, filepath.Join(dir, name)), storedValues(t, source); !slices.Equal(a, b) {
				t.Errorf("%s: stored values differ from its uncompressed source", name)
			}
			if info.DICOM.Min != wantInfo.DICOM.Min || info.DICOM.Max != wantInfo.DICOM.Max || info.DICOM.Rendering != wantInfo.DICOM.Rendering {
				t.Errorf("%s: values %v..%v (%s), source %v..%v (%s)", name, info.DICOM.Min, info.DICOM.Max, info.DICOM.Rendering,
					wantInfo.DICOM.Min, wantInfo.DICOM.Max, wantInfo.DICOM.Rendering)
			}
		}
	}
	// Point transform 2: the stored values lose their two low bits.
	_, src, err := DecodeFile(filepath.Join("testdata", "dicom", "ct_test_series_image0.dcm"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, pt, err := DecodeFile(filepath.Join(dir, "ct_pt2.dcm"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	floor4 := func(hu float64) float64 { return math.Floor((hu+1024)/4)*4 - 1024 } // intercept -1024, slope 1
	if pt.DICOM.Min != floor4(src.DICOM.Min) || pt.DICOM.Max != floor4(src.DICOM.Max) {
		t.Errorf("point transform 2: values %v..%v, want %v..%v", pt.DICOM.Min, pt.DICOM.Max, floor4(src.DICOM.Min), floor4(src.DICOM.Max))
	}
}

// TestDICOMJPEG12 decodes 12-bit JPEG Extended copies of the synthetic and
// the reference CT made by DCMTK: the stored values equal DCMTK's own
// decoding (libjpeg's 12-bit islow IDCT), and they render alike.
func TestDICOMJPEG12(t *testing.T) {
	dir := filepath.Join("testdata", "dicom", "lossless")
	for name, expected := range map[string]string{"synth_ext": "synth_ext_dec.dcm", "ct_ext": "ct_ext_dec_rle.dcm"} {
		got, want := storedValues(t, filepath.Join(dir, name+".dcm")), storedValues(t, filepath.Join(dir, expected))
		if !slices.Equal(got, want) {
			worst := 0.0
			for i := range got {
				worst = max(worst, math.Abs(got[i]-want[i]))
			}
			t.Errorf("%s: stored values differ from DCMTK's decoding by up to %v", name, worst)
		}
		a, _, err := DecodeFile(filepath.Join(dir, name+".dcm"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := DecodeFile(filepath.Join(dir, expected), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Pix, b.Pix) {
			t.Errorf("%s: rendering differs from the decompressed copy's", name)
		}
	}
}

// TestDICOMForgedJPEGSize gives a DICOM frame a JPEG whose header claims
// 65535x65535 pixels, under each JPEG transfer syntax: refused from the
// header (the DICOM says 1024x1024), without allocating for it. (Fuzzing
// found the 12-bit path decoding 8-bit streams without the check.)
func TestDICOMForgedJPEGSize(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("testdata", "dicom", "cxr_encapsulated_cxr.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range []string{"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"} {
		data := bytes.Replace(orig, []byte("1.2.840.10008.1.2.4.50"), []byte(ts), -1)
		sof := bytes.Index(data, []byte{0xFF, 0xC0})
		if sof < 0 {
			t.Fatal("no SOF0 in the frame")
		}
		copy(data[sof+5:], []byte{0xFF, 0xFF, 0xFF, 0xFF}) // height, width
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := Decode(data, Options{})
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "65535x65535") {
			t.Errorf("%s: error %v, want the size refused", ts, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
			t.Errorf("%s: allocated %d MB before refusing", ts, grew>>20)
		}
	}
}

// TestDICOMForgedLength decodes the 3.8 KB file fuzzing found (a string
// element declaring about 2 GB): refused by imageproc/dicom (lengths.go) before the DICOM
// library allocates the declared length (it allocated 1.8 GB).
func TestDICOMForgedLength(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzDecode", "c1f013f27109e64c"))
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(raw), "\n")
	quoted := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(body), "[]byte("), ")")
	data, err := strconv.Unquote(quoted)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err = Decode([]byte(data), Options{})
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "remain") {
		t.Errorf("error %v, want the length refused", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("allocated %d MB", grew>>20)
	}
}

// storedValues returns the stored values of a DICOM file's first frame (its
// samples, for a colour frame), as imageproc/dicom reads them.
func storedValues(t *testing.T, path string) []float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := dicom.Decode(data, 0, 1<<24)
	if err != nil {
		t.Fatal(err)
	}
	if f.Stored != nil {
		return f.Stored
	}
	v := make([]float64, len(f.RGB))
	for i, b := range f.RGB {
		v[i] = float64(b)
	}
	return v
}
