package chat

import (
	"fmt"

	"github.com/medgemma/medgemma/tokenizer"
)

// Options control how a conversation becomes model input.
type Options struct {
	// AddGenerationPrompt ends the prompt with "<start_of_turn>model\n" so the
	// model answers next.
	AddGenerationPrompt bool
	// ImageTokens is the number of soft tokens per image; 0 means
	// DefaultImageTokens.
	ImageTokens int
	// Crops holds the pan-and-scan crop count of each image, in order of
	// appearance; nil means no pan and scan.
	Crops []int
	// MaxTokens bounds the image soft tokens (0: DefaultMaxTokens); a
	// caller with a context passes its length, so that a prompt far over it
	// is refused before it is built.
	MaxTokens int
}

// Prompt is a conversation ready for the model.
type Prompt struct {
	// Text is the expanded prompt that was tokenized.
	Text string
	// IDs are the token ids. The template writes <bos> itself, so they are
	// encoded without adding special tokens.
	IDs []int32
	// TokenTypeIDs is 1 on each image soft token and 0 elsewhere, as
	// transformers' token_type_ids.
	TokenTypeIDs []int32
	// Images is the number of image blocks (original images and crops).
	Images int
}

// Encode renders, expands and tokenizes a conversation.
func Encode(tok *tokenizer.Tokenizer, msgs []Message, opts Options) (*Prompt, error) {
	text, err := Render(msgs, opts.AddGenerationPrompt)
	if err != nil {
		return nil, err
	}
	n := opts.ImageTokens
	if n == 0 {
		n = DefaultImageTokens
	}
	expanded, err := Expand(text, n, opts.Crops, opts.MaxTokens)
	if err != nil {
		return nil, err
	}
	soft, ok := tok.ID(ImageToken)
	if !ok {
		return nil, fmt.Errorf("chat: the tokenizer has no %s token", ImageToken)
	}
	boi, ok := tok.ID(StartOfImage)
	if !ok {
		return nil, fmt.Errorf("chat: the tokenizer has no %s token", StartOfImage)
	}
	p := &Prompt{Text: expanded, IDs: tok.Encode(expanded, false)}
	p.TokenTypeIDs = make([]int32, len(p.IDs))
	for i, id := range p.IDs {
		switch id {
		case soft:
			p.TokenTypeIDs[i] = 1
		case boi:
			p.Images++
		}
	}
	return p, nil
}
