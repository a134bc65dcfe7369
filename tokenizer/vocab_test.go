package tokenizer_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/medgemma/medgemma/tokenizer"
)

// TestFromVocabulary: the Gemma 3 tokenizer written out as a SentencePiece
// vocabulary (what a GGUF file carries) and rebuilt from it encodes every
// reference row and a clinical text exactly as transformers does, and
// decodes them back; a vocabulary without scores is refused.
func TestFromVocabulary(t *testing.T) {
	tok := gemma3(t)
	tokens, scores, types := tok.Vocabulary()
	if len(tokens) != tok.Len() || types[2] != TypeControl || types[238] != TypeByte || types[3] != TypeUnknown || types[1000] != TypeNormal {
		t.Fatalf("vocabulary: %d tokens, types %v %v %v %v", len(tokens), types[2], types[238], types[3], types[1000])
	}
	rebuilt, err := FromVocabulary(tokens, scores, types, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{}
	for _, r := range readEncodeRows(t) {
		texts = append(texts, r.Text)
	}
	clinical, err := os.ReadFile(filepath.Join("testdata", "clinical.txt"))
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, string(clinical), "<start_of_turn>user\nDescribe <start_of_image> this<end_of_turn>\n")
	for i, s := range texts {
		for _, special := range []bool{false, true} {
			want, got := tok.Encode(s, special), rebuilt.Encode(s, special)
			if !slices.Equal(got, want) {
				t.Fatalf("text %d (special %v) %.40q:\n got %v\nwant %v", i, special, s, got, want)
			}
			if d := rebuilt.Decode(got, false); d != tok.Decode(want, false) {
				t.Fatalf("text %d: decoded %.40q", i, d)
			}
		}
	}
	zero := make([]float32, len(scores))
	if _, err := FromVocabulary(tokens, zero, types, 2, true); err == nil || !strings.Contains(err.Error(), "scores are all zero") {
		t.Errorf("zero scores: %v", err)
	}
	if _, err := FromVocabulary(tokens, scores[:10], types, 2, true); err == nil {
		t.Error("mismatched lengths: no error")
	}
	// A piece of a million characters is taken as it is (trying its
	// splits would take hours: the test's timeout would end it).
	long := append(slices.Clone(tokens), strings.Repeat("a", 1<<20))
	if _, err := FromVocabulary(long, append(slices.Clone(scores), -1), append(slices.Clone(types), TypeNormal), 2, true); err != nil {
		t.Fatal(err)
	}
}
