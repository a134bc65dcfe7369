package tokenizer

import "fmt"

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
