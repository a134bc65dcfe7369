package imageproc

import "github.com/medgemma/medgemma/imageproc/internal/imgerr"

// Kinds of decoding errors, for errors.Is: a server answers each one
// differently (413 for an image too large, 415 for a format it does not
// take, 400 for a damaged file or options the file cannot satisfy). Every
// error Decode returns is one of them; its message says what exactly. The
// decoders in imageproc/jpeg and imageproc/dicom return the same kinds.
var (
	// ErrTooLarge: the image has more pixels than the limit (Options.MaxPixels).
	ErrTooLarge = imgerr.ErrTooLarge
	// ErrUnsupported: not a format, or a variant of one (a DICOM transfer
	// syntax, a JPEG process), that this package decodes.
	ErrUnsupported = imgerr.ErrUnsupported
	// ErrCorrupt: the file is damaged or malformed.
	ErrCorrupt = imgerr.ErrCorrupt
	// ErrOptions: the options ask for what the image does not have (a frame
	// past the last, a window on a colour image).
	ErrOptions = imgerr.ErrOptions
)

func withKind(kind, err error) error { return imgerr.With(kind, err) }

// checkSize refuses empty images and images over the pixel limit.
func checkSize(w, h int, limit int64) error { return imgerr.CheckSize(w, h, limit) }
