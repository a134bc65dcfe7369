package tokenizer

import (
	"errors"
	"fmt"
	"sort"
)

// SentencePiece token types, as GGUF's tokenizer.ggml.token_type holds them.
const (
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeByte        int32 = 6
)

// Vocabulary returns the vocabulary as a SentencePiece model lists it (what
// a GGUF file's tokenizer.ggml.tokens, scores and token_type hold): every id
// with its text (a gap in the ids is "[PAD<id>]", as llama.cpp's converter
// writes it), a score that orders merges as the BPE ranks do (the token a
// merge of rank r produces scores -(r+1); others 0), and its type: control
// for special tokens, unknown, user-defined for other added tokens, byte
// for <0xNN>, normal for the rest.
func (t *Tokenizer) Vocabulary() (tokens []string, scores []float32, types []int32) {
	n := len(t.tokens)
	tokens, scores, types = make([]string, n), make([]float32, n), make([]int32, n)
	for _, v := range t.merges {
		rank, id := int32(v>>32), int32(uint32(v))
		if s := -float32(rank + 1); scores[id] == 0 || s > scores[id] {
			scores[id] = s
		}
	}
	for id, s := range t.tokens {
		tokens[id] = s
		switch {
		case s == "":
			tokens[id] = fmt.Sprintf("[PAD%d]", id)
			types[id] = TypeUserDefined
		case int32(id) == t.unkID:
			types[id] = TypeUnknown
		case t.flags[id]&flagSpecial != 0:
			types[id] = TypeControl
		case t.flags[id]&flagAdded != 0:
			types[id] = TypeUserDefined
		case t.byteOf[id] >= 0:
			types[id] = TypeByte
		default:
			types[id] = TypeNormal
		}
	}
	return tokens, scores, types
}

// maxMergedPiece is the longest piece FromVocabulary makes merges for:
// SentencePiece pieces are short (Gemma's longest, runs of spaces, are 31
// characters); a hostile vocabulary of long pieces would otherwise cost the
// square of their length.
const maxMergedPiece = 256

// FromVocabulary builds a Gemma tokenizer from a SentencePiece vocabulary,
// as a GGUF file holds it (tokenizer.ggml.tokens, scores, token_type): the
// pieces are the BPE vocabulary; control, unknown and user-defined pieces
// are added tokens (control and unknown ones special); every split of a
// normal piece (or of a user-defined one with a score, such as a run of
// spaces) into two pieces is a merge, ranked by the piece's score,
// highest first (ties by id), the splits of one piece by their halves' ids:
// the merges transformers derives from a SentencePiece model. Spaces are
// "▁", bytes fall back to <0xNN>, and bos (when addBOS) starts every text,
// as Gemma's tokenizer.json says. Pieces "[PAD<id>]" (gaps a converter
// filled) are left out.
func FromVocabulary(tokens []string, scores []float32, types []int32, bos int32, addBOS bool) (*Tokenizer, error) {
	n := len(tokens)
	if n == 0 || len(scores) != n || len(types) != n {
		return nil, fmt.Errorf("a vocabulary of %d tokens with %d scores and %d types", n, len(scores), len(types))
	}
	if bos < 0 || int(bos) >= n {
		return nil, fmt.Errorf("bos id %d is outside the vocabulary (%d tokens)", bos, n)
	}
	m := &modelJSON{typ: "BPE", byteFallback: true, fuseUnk: true, vocab: make(map[string]int32, n)}
	f := &fileJSON{}
	scored := false
	var normal []int32
	for id, s := range tokens {
		typ := types[id]
		if typ == TypeUserDefined && s == fmt.Sprintf("[PAD%d]", id) {
			continue
		}
		if _, dup := m.vocab[s]; dup {
			return nil, fmt.Errorf("token %q appears twice (ids %d and %d)", s, m.vocab[s], id)
		}
		m.vocab[s] = int32(id)
		switch typ {
		case TypeUnknown:
			unk := s
			m.unkToken = &unk
			f.AddedTokens = append(f.AddedTokens, addedTokenJSON{ID: int32(id), Content: s, Special: true})
		case TypeControl:
			f.AddedTokens = append(f.AddedTokens, addedTokenJSON{ID: int32(id), Content: s, Special: true})
		case TypeUserDefined:
			f.AddedTokens = append(f.AddedTokens, addedTokenJSON{ID: int32(id), Content: s})
			if scores[id] != 0 { // made by merges too (runs of spaces)
				normal = append(normal, int32(id))
			}
		case TypeNormal:
			normal = append(normal, int32(id))
			scored = scored || scores[id] != 0
		}
	}
	if !scored {
		return nil, errors.New("the vocabulary's scores are all zero, so they cannot order its merges")
	}
	sort.SliceStable(normal, func(a, b int) bool { return scores[normal[a]] > scores[normal[b]] })
	for _, id := range normal {
		s := tokens[id]
		if len(s) > maxMergedPiece {
			continue // no merge makes it (and its splits would cost len² to try)
		}
		var splits [][2]int32
		for i := range s {
			if i == 0 {
				continue
			}
			l, okl := m.vocab[s[:i]]
			r, okr := m.vocab[s[i:]]
			if okl && okr {
				splits = append(splits, [2]int32{l, r})
			}
		}
		sort.Slice(splits, func(a, b int) bool {
			if splits[a][0] != splits[b][0] {
				return splits[a][0] < splits[b][0]
			}
			return splits[a][1] < splits[b][1]
		})
		m.merges = append(m.merges, splits...)
	}
	space, under := " ", "\u2581"
	f.Normalizer = &componentJSON{Type: "Replace", Pattern: &patternJSON{String: &space}, Content: under}
	f.PreTokenizer = &componentJSON{Type: "Split", Pattern: &patternJSON{String: &space}, Behavior: "MergedWithPrevious"}
	if addBOS {
		f.PostProcessor = &componentJSON{Type: "TemplateProcessing",
			Single: []templatePieceJSON{{SpecialToken: &struct {
				ID string `json:"id"`
			}{tokens[bos]}}, {Sequence: &struct {
				ID string `json:"id"`
			}{"A"}}},
			SpecialTokens: map[string]struct {
				IDs []int32 `json:"ids"`
			}{tokens[bos]: {IDs: []int32{bos}}}}
	}
	f.Decoder = &componentJSON{Type: "Sequence", Decoders: []*componentJSON{
		{Type: "Replace", Pattern: &patternJSON{String: &under}, Content: " "},
		{Type: "ByteFallback"}, {Type: "Fuse"}}}
	return build(m, f)
}
