package imageproc

import (
	"errors"

	"github.com/medgemma/medgemma/internal/errkind"
)

// Kinds of decoding errors, for errors.Is: a server answers each one
// differently (413 for an image too large, 415 for a format it does not
// take, 400 for a damaged file or options the file cannot satisfy). Every
// error Decode returns is one of them; its message says what exactly.
var (
	// ErrTooLarge: the image has more pixels than the limit (Options.MaxPixels).
	ErrTooLarge = errors.New("image too large")
	// ErrUnsupported: not a format, or a variant of one (a DICOM transfer
	// syntax, a JPEG process), that this package decodes.
	ErrUnsupported = errors.New("unsupported image format")
	// ErrCorrupt: the file is damaged or malformed.
	ErrCorrupt = errors.New("corrupt image")
	// ErrOptions: the options ask for what the image does not have (a frame
	// past the last, a window on a colour image).
	ErrOptions = errors.New("image options do not fit the image")
)

// withKind marks err as of the given kind (nil stays nil).
func withKind(kind, err error) error { return errkind.With(kind, err) }

// classified returns err marked as corrupt unless it already has a kind.
func classified(err error) error {
	if err == nil || errkind.Has(err, ErrTooLarge, ErrUnsupported, ErrCorrupt, ErrOptions) {
		return err
	}
	return withKind(ErrCorrupt, err)
}
