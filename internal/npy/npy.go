// Package npy reads the little-endian float32 .npy files of the reference
// data (numpy's format: magic, a header dict, raw C-order data).
package npy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Array is a float32 array and its shape.
type Array struct {
	Shape []int
	Data  []float32
}

var (
	descrRE = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	orderRE = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRE = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// ReadFile reads a .npy file holding '<f4' data in C order.
func ReadFile(path string) (*Array, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	a, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Parse reads the bytes of a .npy file.
func Parse(b []byte) (*Array, error) {
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, errors.New("not a .npy file")
	}
	var hlen, start int
	switch b[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, errors.New("truncated header")
		}
		hlen, start = int(binary.LittleEndian.Uint32(b[8:12])), 12
	default:
		return nil, fmt.Errorf("unsupported .npy version %d", b[6])
	}
	if start+hlen > len(b) {
		return nil, errors.New("truncated header")
	}
	h := string(b[start : start+hlen])
	d, o, s := descrRE.FindStringSubmatch(h), orderRE.FindStringSubmatch(h), shapeRE.FindStringSubmatch(h)
	if d == nil || o == nil || s == nil {
		return nil, fmt.Errorf("unreadable header %q", h)
	}
	if d[1] != "<f4" || o[1] != "False" {
		return nil, fmt.Errorf("want '<f4' in C order, have %s fortran_order=%s", d[1], o[1])
	}
	a := &Array{}
	n := 1
	for f := range strings.SplitSeq(s[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("bad shape %q", s[1])
		}
		a.Shape = append(a.Shape, v)
		n *= v
	}
	body := b[start+hlen:]
	if len(body) != 4*n {
		return nil, fmt.Errorf("data is %d bytes, shape %v needs %d", len(body), a.Shape, 4*n)
	}
	a.Data = make([]float32, n)
	for i := range a.Data {
		a.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
	}
	return a, nil
}
