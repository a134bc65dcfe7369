package imageproc

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Window maps a range of stored or modality values (Hounsfield units for CT)
// onto 0..255: values below Center - Width/2 become 0, values above
// Center + Width/2 become 255, and the range between is linear.
type Window struct {
	Name          string // a preset's name, or "" for a custom window
	Center, Width float64
}

// Presets are the named windows, with the centers and widths radiologists
// commonly use (Hounsfield units).
var Presets = map[string]Window{
	"lung":        {"lung", -600, 1500},
	"mediastinum": {"mediastinum", 50, 350},
	"bone":        {"bone", 400, 1800},
	"brain":       {"brain", 40, 80},
	"abdomen":     {"abdomen", 50, 400},
	"soft-tissue": {"soft-tissue", 40, 400},
}

// ctWindows is how Google packs CT for MedGemma: a wide window in red, a
// soft-tissue window in green and a brain window in blue.
var ctWindows = [3]Window{{"wide", 0, 2048}, {"soft-tissue-narrow", 175, 80}, {"brain", 40, 80}}

// ParseWindow reads a preset name or "CENTER,WIDTH".
func ParseWindow(s string) (Window, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	name = strings.ReplaceAll(strings.ReplaceAll(name, " ", "-"), "_", "-")
	if w, ok := Presets[name]; ok {
		return w, nil
	}
	c, wd, ok := strings.Cut(s, ",")
	if !ok {
		names := make([]string, 0, len(Presets))
		for n := range Presets {
			names = append(names, n)
		}
		sort.Strings(names)
		return Window{}, fmt.Errorf("window %q: want a preset (%s) or CENTER,WIDTH", s, strings.Join(names, ", "))
	}
	center, err1 := strconv.ParseFloat(strings.TrimSpace(c), 64)
	width, err2 := strconv.ParseFloat(strings.TrimSpace(wd), 64)
	if err1 != nil || err2 != nil || math.IsNaN(center) || math.IsInf(center, 0) || !(width >= 1) || math.IsInf(width, 0) {
		return Window{}, fmt.Errorf("window %q: CENTER,WIDTH must be numbers with WIDTH at least 1", s)
	}
	return Window{Center: center, Width: width}, nil
}

// String returns the window as it can be parsed back.
func (w Window) String() string {
	if w.Name != "" {
		return w.Name
	}
	return strconv.FormatFloat(w.Center, 'g', -1, 64) + "," + strconv.FormatFloat(w.Width, 'g', -1, 64)
}

// windowLUT is a window prepared for repeated application.
type windowLUT struct {
	lo, hi, slope float64
}

func (w Window) prepare() windowLUT {
	half := math.Floor(w.Width / 2)
	l := windowLUT{lo: w.Center - half, hi: w.Center + half}
	if l.hi > l.lo {
		l.slope = 255 / (l.hi - l.lo)
	}
	return l
}

// apply is Google's window_accurate: clip to [c - w//2, c + w//2], map
// linearly onto 0..255 (numpy interp), round half to even (numpy round).
func (l windowLUT) apply(v float64) uint8 {
	switch {
	case v >= l.hi: // a width below 2 leaves lo == hi: a threshold
		return 255
	case v <= l.lo:
		return 0
	}
	return uint8(math.RoundToEven(l.slope * (v - l.lo)))
}

// Apply maps one value through the window.
func (w Window) Apply(v float64) uint8 { return w.prepare().apply(v) }
