// Package imgerr holds the kinds of image decoding errors that imageproc
// and its decoders (imageproc/jpeg, imageproc/dicom) share, so that an
// error from any of them answers errors.Is for imageproc's kinds.
package imgerr

import (
	"errors"
	"fmt"

	"github.com/medgemma/medgemma/internal/errkind"
)

// The kinds; imageproc exports them (ErrTooLarge, ...) with their meaning.
var (
	ErrTooLarge    = errors.New("image too large")
	ErrUnsupported = errors.New("unsupported image format")
	ErrCorrupt     = errors.New("corrupt image")
	ErrOptions     = errors.New("image options do not fit the image")
)

// With marks err as of kind (nil stays nil); the message is err's.
func With(kind, err error) error { return errkind.With(kind, err) }

// Classified returns err marked as corrupt unless it already has a kind.
func Classified(err error) error {
	if err == nil || errkind.Has(err, ErrTooLarge, ErrUnsupported, ErrCorrupt, ErrOptions) {
		return err
	}
	return With(ErrCorrupt, err)
}

// CheckSize refuses empty images and images over the pixel limit.
func CheckSize(w, h int, limit int64) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("image has no pixels (%dx%d)", w, h)
	}
	if int64(w)*int64(h) > limit {
		return With(ErrTooLarge, fmt.Errorf("image is %dx%d = %d pixels, over the limit of %d", w, h, int64(w)*int64(h), limit))
	}
	return nil
}
