package model

import (
	"context"
	"errors"
	"fmt"
)

// Prompt is a sequence's input before it is run: token ids in which each run
// of image soft tokens stands for one image block (a whole image or a
// pan-and-scan crop), whose features replace those tokens' embeddings, as
// Gemma3ForConditionalGeneration does with masked_scatter.
type Prompt struct {
	IDs []int32
	// TokenTypeIDs is 1 on image soft tokens and 0 elsewhere (transformers'
	// token_type_ids); nil for text. Each run of ones is one image block.
	TokenTypeIDs []int32
	// Image returns the features of image block i (in order of appearance,
	// from 0): one row of the decoder's hidden_size per soft token of the
	// block, as Model.EncodeImage computes them. It is called when a chunk
	// first needs the block, so images are decoded and encoded as the
	// prefill reaches them, and not at all for blocks already in a reused
	// cache.
	Image func(ctx context.Context, i int) ([]float32, error)
	// ImageKeys names each image block (content and preparation) for
	// prefix caching; without them nothing from the first image on is
	// shared between sequences.
	ImageKeys [][32]byte
}

// Span is the positions [Start, End) of one image block in a prompt.
type Span struct{ Start, End int }

// ImageSpans returns the image blocks of token types, in order: each run of
// ones.
func ImageSpans(tokenTypes []int32) []Span {
	var spans []Span
	for i, tt := range tokenTypes {
		if tt != 1 {
			continue
		}
		if i == 0 || tokenTypes[i-1] != 1 {
			spans = append(spans, Span{i, i})
		}
		spans[len(spans)-1].End = i + 1
	}
	return spans
}

// ChunkEnd is where a chunk of at most size tokens starting at from ends:
// from+size, moved to the end of an image block it would cut (the tokens of
// an image attend to each other both ways, so they must be in one chunk).
func (p *Prompt) ChunkEnd(from, size int) int {
	end := min(from+size, len(p.IDs))
	for p.TokenTypeIDs != nil && end < len(p.IDs) && end > 0 && p.TokenTypeIDs[end] == 1 && p.TokenTypeIDs[end-1] == 1 {
		end++
	}
	return end
}

// Input is the decoder input for positions from..to of the prompt: the ids,
// each image block's group (its index) and its features in the soft tokens'
// rows. The range must hold whole image blocks. embeds is reused when it is
// large enough.
func (p *Prompt) Input(ctx context.Context, from, to int, hidden int, embeds []float32) (Input, error) {
	if from < 0 || to > len(p.IDs) || from >= to {
		return Input{}, fmt.Errorf("prompt range %d..%d of %d tokens", from, to, len(p.IDs))
	}
	in := Input{IDs: p.IDs[from:to]}
	if p.TokenTypeIDs == nil {
		return in, nil
	}
	if p.ImageKeys != nil {
		in.ImageKey = func(g int32) ([32]byte, bool) {
			if g < 0 || int(g) >= len(p.ImageKeys) {
				return [32]byte{}, false
			}
			return p.ImageKeys[g], true
		}
	}
	if len(p.TokenTypeIDs) != len(p.IDs) {
		return Input{}, fmt.Errorf("%d token types for %d ids", len(p.TokenTypeIDs), len(p.IDs))
	}
	var spans []Span
	block := 0 // index of the first block at or after from
	for _, s := range ImageSpans(p.TokenTypeIDs[:to]) {
		switch {
		case s.End <= from:
			block++
		case s.Start < from || (s.End == to && to < len(p.IDs) && p.TokenTypeIDs[to] == 1):
			return Input{}, fmt.Errorf("image block %d (positions %d..%d) is cut by the chunk %d..%d: an image's tokens must be in one chunk", block+len(spans), s.Start, s.End-1, from, to-1)
		default:
			spans = append(spans, s)
		}
	}
	if len(spans) == 0 {
		return in, nil
	}
	if p.Image == nil {
		return Input{}, errors.New("the prompt has image tokens but no images")
	}
	n := to - from
	if cap(embeds) < n*hidden {
		embeds = make([]float32, n*hidden)
	}
	in.Embeds, in.Replace, in.Groups = embeds[:n*hidden], make([]bool, n), make([]int32, n)
	for i := range in.Groups {
		in.Groups[i] = -1
	}
	for k, s := range spans {
		i := block + k
		feats, err := p.Image(ctx, i)
		if err != nil {
			return Input{}, err
		}
		if len(feats) != (s.End-s.Start)*hidden {
			return Input{}, fmt.Errorf("image block %d has %d values for %d soft tokens of %d", i, len(feats), s.End-s.Start, hidden)
		}
		copy(in.Embeds[(s.Start-from)*hidden:], feats)
		for j := s.Start; j < s.End; j++ {
			in.Replace[j-from], in.Groups[j-from] = true, int32(i)
		}
	}
	return in, nil
}
