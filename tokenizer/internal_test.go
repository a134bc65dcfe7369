package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/medgemma/medgemma/internal/testenv"
)

var (
	realOnce sync.Once
	realTok  *Tokenizer
	realErr  error
)

func real(t testing.TB) *Tokenizer {
	t.Helper()
	dir := testenv.TokenizerDir(t)
	realOnce.Do(func() { realTok, realErr = LoadDir(dir) })
	if realErr != nil {
		t.Fatal(realErr)
	}
	return realTok
}

// TestMergeHeapMatchesSmall checks that the two merge strategies agree on
// random pieces of text of every length class.
func TestMergeHeapMatchesSmall(t *testing.T) {
	tok := real(t)
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aeioustrnlcdhmpbgy ▁▁.,-0123456789éüßΩ肺炎\u200d😀")
	for i := range 3000 {
		n := 1 + rng.IntN(80)
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		word := []byte(strings.ReplaceAll(b.String(), " ", "▁"))
		syms := tok.symbols(nil, word)
		small := tok.mergeSmall(slices.Clone(syms), make([]int32, len(syms)), make([]int32, len(syms)))
		heap := tok.mergeHeap(slices.Clone(syms))
		if !slices.Equal(small, heap) {
			t.Fatalf("case %d %q: small %v, heap %v", i, word, small, heap)
		}
	}
}

// TestCuttingDoesNotChangeResults encodes text with and without cutting it
// into cacheable pieces.
func TestCuttingDoesNotChangeResults(t *testing.T) {
	tok := real(t)
	data, err := os.ReadFile(filepath.Join("testdata", "clinical.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for para := range strings.SplitSeq(string(data), "\n") {
		if para == "" {
			continue
		}
		got := tok.Encode(para, false)
		whole := tok.mergeHeap(tok.symbols(nil, []byte(strings.ReplaceAll(para, " ", "▁"))))
		if !slices.Equal(got, whole) {
			t.Fatalf("%q: cut %v, whole %v", para, got, whole)
		}
	}
}

// miniTokenizerJSON is a small valid tokenizer.json in Gemma's shape.
func miniTokenizerJSON() string {
	var vocab []string
	add := func(tok string) { vocab = append(vocab, fmt.Sprintf("%q: %d", tok, len(vocab))) }
	for _, tok := range []string{"<pad>", "<eos>", "<bos>", "<unk>", "a", "b", "ab", "▁", "▁ab", "c"} {
		add(tok)
	}
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b))
	}
	return `{
  "version": "1.0", "truncation": null, "padding": null,
  "added_tokens": [
    {"id": 0, "content": "<pad>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "<bos>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
  "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false},
  "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [], "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]},
  "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null, "end_of_word_suffix": null,
    "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
    "vocab": {` + strings.Join(vocab, ", ") + `},
    "merges": [["a", "b"], "▁ ab"]}
}`
}

func TestMiniTokenizer(t *testing.T) {
	tok, err := Parse([]byte(miniTokenizerJSON()))
	if err != nil {
		t.Fatal(err)
	}
	// "ab ab c€": a+b -> ab, ▁+ab -> ▁ab, € through byte fallback.
	got := tok.Encode("ab ab c€<bos>", true)
	want := []int32{2, 6, 8, 7, 9, 10 + 0xE2, 10 + 0x82, 10 + 0xAC, 2}
	if !slices.Equal(got, want) {
		t.Fatalf("Encode = %v, want %v", got, want)
	}
	if d := tok.Decode(got, true); d != "ab ab c€" {
		t.Errorf("Decode = %q", d)
	}
}

// TestBadFiles checks that malformed files give errors naming the problem and
// never panic, including every truncation of a valid file.
func TestBadFiles(t *testing.T) {
	good := miniTokenizerJSON()
	for n := range len(good) - 1 {
		if _, err := Parse([]byte(good[:n])); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
	for _, c := range []struct{ name, data, want string }{
		{"empty", "", "empty file"},
		{"not json", "hello", "malformed"},
		{"array", "[1,2]", "malformed"},
		{"no model", `{"added_tokens": []}`, `no "model"`},
		{"wordpiece", strings.Replace(good, `"type": "BPE"`, `"type": "WordPiece"`, 1), `"WordPiece" is not supported`},
		{"unknown merge", strings.Replace(good, `["a", "b"]`, `["a", "zz"]`, 1), `"zz", which is not in the vocabulary`},
		{"merge result", strings.Replace(good, `["a", "b"]`, `["b", "a"]`, 1), `makes "ba"`},
		{"bad merge string", strings.Replace(good, `"▁ ab"`, `"▁ab"`, 1), "not two tokens"},
		{"negative id", strings.Replace(good, `"c": 9`, `"c": -9`, 1), "non-negative integer"},
		{"unknown normalizer", strings.Replace(good, `"type": "Replace", "pattern": {"String": " "}`, `"type": "NFKC", "pattern": {"String": " "}`, 1), `normalizer type "NFKC"`},
		{"unknown decoder", strings.Replace(good, `{"type": "Fuse"}`, `{"type": "Strip"}`, 1), `decoder type "Strip"`},
		{"trailing data", good + "x", "after the top-level object"},
		{"bad escape", strings.Replace(good, `"<pad>"`, `"<p\qd>"`, 1), `invalid escape`},
	} {
		_, err := Parse([]byte(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("missing file: error %v does not name the file", err)
	}
	if err := os.WriteFile(path, []byte(good[:len(good)/2]), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "unexpected end of input") {
		t.Errorf("truncated file: error %v", err)
	}
}

// FuzzEncode checks that any input encodes without panicking, that every id is
// a real token, and that valid UTF-8 without "▁" decodes back to itself.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", " ", "Hello, my dog is cute", "<start_of_turn>user\nHi<end_of_turn>", "\xff\xfe", "肺炎 😀\u200d", "\t\t\n\n  x", "<0x41>", "<unused12", "a\x00b"} {
		f.Add(s)
	}
	tok := real(f)
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s, true)
		for _, id := range ids {
			if !tok.Valid(id) {
				t.Fatalf("%q: invalid id %d", s, id)
			}
		}
		got := tok.Decode(ids[1:], false)
		if utf8.ValidString(s) && !strings.Contains(s, "▁") && got != s {
			t.Fatalf("decode(encode(%q)) = %q", s, got)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(miniTokenizerJSON()))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			return
		}
		ids := tok.Encode("ab c\xff<bos>", true)
		_ = tok.Decode(ids, false)
	})
}

// clinicalText returns about n bytes of varied clinical English: the
// paragraphs of testdata/clinical.txt with their placeholders filled by
// different numbers each time.
func clinicalText(t testing.TB, n int) string {
	data, err := os.ReadFile(filepath.Join("testdata", "clinical.txt"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	for b.Len() < n {
		text := string(data)
		for _, ph := range []string{"{AGE}", "{TEMP}", "{DOSE}", "{HR}", "{SBP}", "{DBP}", "{SAT}", "{WBC}", "{CREAT}", "{VOL}", "{NODE}", "{THICK}", "{PACK}"} {
			for strings.Contains(text, ph) {
				text = strings.Replace(text, ph, fmt.Sprintf("%d.%d", rng.IntN(300), rng.IntN(10)), 1)
			}
		}
		b.WriteString(text)
	}
	return b.String()
}

func BenchmarkLoad(b *testing.B) {
	path := filepath.Join(testenv.TokenizerDir(b), "tokenizer.json")
	for b.Loop() {
		if _, err := Load(path); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	tok := real(b)
	text := clinicalText(b, 1<<20)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text, false)
	}
}

// BenchmarkEncodeColdCache empties the piece cache before every run.
func BenchmarkEncodeColdCache(b *testing.B) {
	tok := real(b)
	text := clinicalText(b, 1<<20)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		b.StopTimer()
		tok.cache.init()
		b.StartTimer()
		tok.Encode(text, false)
	}
}

func BenchmarkDecode(b *testing.B) {
	tok := real(b)
	text := clinicalText(b, 1<<20)
	ids := tok.Encode(text, false)
	b.SetBytes(int64(len(text)))
	buf := make([]byte, 0, 2*len(text))
	for b.Loop() {
		buf = tok.AppendDecode(buf[:0], ids, false)
	}
}
