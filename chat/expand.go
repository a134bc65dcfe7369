package chat

import (
	"errors"
	"fmt"
	"strings"

	"github.com/medgemma/medgemma/internal/errkind"
)

// DefaultImageTokens is MedGemma's number of soft tokens per image
// (mm_tokens_per_image in config.json, image_seq_length in
// processor_config.json).
const DefaultImageTokens = 256

// Bounds on the expansion, checked before anything is built: a prompt
// expands to ImageBlock's text once per image block, so an image count,
// crop count or tokens per image from a request or a flag could otherwise
// ask for gigabytes.
const (
	MaxImageTokens = 1 << 16 // soft tokens per image block
	MaxCrops       = 64      // pan-and-scan crops per image
	// DefaultMaxTokens is Options.MaxTokens's default: 1M soft tokens,
	// eight times Gemma 3's context.
	DefaultMaxTokens = 1 << 20
)

// ErrTooManyTokens is the kind (errors.Is) of Expand's and Encode's error
// for image blocks whose soft tokens alone exceed the limit.
var ErrTooManyTokens = errors.New("too many tokens")

// SoftTokens is how many image soft tokens the images of text (one
// <start_of_image> each) expand to with these crops.
func SoftTokens(text string, imageTokens int, crops []int) int64 {
	blocks := int64(strings.Count(text, StartOfImage))
	for _, c := range crops {
		blocks += int64(max(c, 0))
	}
	return blocks * int64(imageTokens)
}

// ImageBlock is the text that stands for one image in the model's input:
// a blank line, <start_of_image>, n soft tokens, <end_of_image>, a blank line.
func ImageBlock(n int) string {
	return "\n\n" + StartOfImage + strings.Repeat(ImageToken, n) + EndOfImage + "\n\n"
}

// PanAndScanText is the prompt text that transformers puts in place of an
// image that pan and scan cut into crops: the whole image first, then each
// crop, every one of them a <start_of_image> placeholder.
func PanAndScanText(crops int) string {
	placeholders := make([]string, crops)
	for i := range placeholders {
		placeholders[i] = StartOfImage
	}
	return "Here is the original image " + StartOfImage +
		" and here are some crops to help you see better " + strings.Join(placeholders, " ")
}

// Expand turns the rendered prompt (one <start_of_image> per image) into the
// text that is tokenized, as Gemma3Processor does: an image i with crops[i] > 0
// is first replaced by PanAndScanText(crops[i]), then every <start_of_image>
// becomes ImageBlock(imageTokens). crops may be shorter than the number of
// images (missing counts are 0) but not longer.
//
// The soft tokens of all the blocks must not exceed maxTokens (0:
// DefaultMaxTokens), checked before the text is built.
func Expand(text string, imageTokens int, crops []int, maxTokens int) (string, error) {
	s, err := expand(text, imageTokens, crops, maxTokens)
	return s, errkind.With(ErrInvalidConversation, err)
}

func expand(text string, imageTokens int, crops []int, maxTokens int) (string, error) {
	if imageTokens <= 0 || imageTokens > MaxImageTokens {
		return "", fmt.Errorf("chat: %d image tokens per image; want 1..%d", imageTokens, MaxImageTokens)
	}
	images := strings.Count(text, StartOfImage)
	if len(crops) > images {
		return "", fmt.Errorf("chat: crop counts for %d images, but the prompt has %d", len(crops), images)
	}
	for i, c := range crops {
		if c < 0 || c > MaxCrops {
			return "", fmt.Errorf("chat: image %d: crop count %d outside 0..%d", i, c, MaxCrops)
		}
	}
	if maxTokens <= 0 {
		maxTokens = DefaultMaxTokens
	}
	if n := SoftTokens(text, imageTokens, crops); n > int64(maxTokens) {
		return "", errkind.With(ErrTooManyTokens, fmt.Errorf("chat: %d images with %d crops expand to %d image tokens, over the limit of %d", images, SoftTokens("", 1, crops), n, maxTokens))
	}
	block := ImageBlock(imageTokens)
	var b strings.Builder
	for i := 0; ; i++ {
		at := strings.Index(text, StartOfImage)
		if at < 0 {
			b.WriteString(text)
			break
		}
		b.WriteString(text[:at])
		text = text[at+len(StartOfImage):]
		n := 0
		if i < len(crops) {
			n = crops[i]
		}
		if n == 0 {
			b.WriteString(block)
			continue
		}
		b.WriteString(strings.ReplaceAll(PanAndScanText(n), StartOfImage, block))
	}
	return b.String(), nil
}
