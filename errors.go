package medgemma

import (
	"errors"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/imageproc"
)

// The kinds of errors Chat returns for what a caller sent, for errors.Is; a
// server maps them to statuses (the closing comment of each). Errors that
// are none of them are the server's own (500). A cancelled context gives
// the context's error.
var (
	// ErrPromptTooLong: the prompt does not fit the context (400).
	ErrPromptTooLong = generate.ErrPromptTooLong
	// ErrInvalidConversation: roles out of order, an unknown role or part,
	// text that spells the image tokens (400).
	ErrInvalidConversation = chat.ErrInvalidConversation
	// ErrInvalidOptions: a sampling or generation setting out of range (400).
	ErrInvalidOptions = generate.ErrInvalidOptions
	// ErrTextOnly: an image sent to a text-only checkpoint (400).
	ErrTextOnly = errors.New("this checkpoint is text only and takes no images")
	// ErrImageSource: an image source the policy refuses (a file or a host
	// not allowed), or one that could not be read (400).
	ErrImageSource = errors.New("image source refused or unreadable")
	// ErrImageTooLarge: an image over the byte or pixel limits (413).
	ErrImageTooLarge = imageproc.ErrTooLarge
	// ErrUnsupportedImage: a format or variant that is not decoded (415).
	ErrUnsupportedImage = imageproc.ErrUnsupported
	// ErrCorruptImage: a damaged or malformed image (400).
	ErrCorruptImage = imageproc.ErrCorrupt
	// ErrImageOptions: image options the image cannot satisfy, such as a
	// DICOM frame past its last (400).
	ErrImageOptions = imageproc.ErrOptions
)

// ErrNoImage is returned (as an ErrImageSource) for an image part without a
// source.
var ErrNoImage = errors.New("an image part has no image (path, file:// or http(s) URL, or data: URI)")
