package chat

import (
	"fmt"
	"strings"
)

// DefaultImageTokens is MedGemma's number of soft tokens per image
// (mm_tokens_per_image in config.json, image_seq_length in
// processor_config.json).
const DefaultImageTokens = 256

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
func Expand(text string, imageTokens int, crops []int) (string, error) {
	if imageTokens <= 0 {
		return "", fmt.Errorf("chat: %d image tokens per image; want at least 1", imageTokens)
	}
	images := strings.Count(text, StartOfImage)
	if len(crops) > images {
		return "", fmt.Errorf("chat: crop counts for %d images, but the prompt has %d", len(crops), images)
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
		if n < 0 {
			return "", fmt.Errorf("chat: image %d: negative crop count %d", i, n)
		}
		if n == 0 {
			b.WriteString(block)
			continue
		}
		b.WriteString(strings.ReplaceAll(PanAndScanText(n), StartOfImage, block))
	}
	return b.String(), nil
}
