package tokenizer_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/medgemma/medgemma/internal/testtok"
)

var gemma3 = testtok.Gemma3

type encodeRow struct {
	Text               string   `json:"text"`
	IDs                []int32  `json:"ids"`
	Tokens             []string `json:"tokens"`
	IDsWithSpecial     []int32  `json:"ids_with_special"`
	Decoded            string   `json:"decoded"`
	DecodedSkipSpecial string   `json:"decoded_skip_special"`
}

func readEncodeRows(t *testing.T) []encodeRow {
	f, err := os.Open(filepath.Join("testdata", "encode.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []encodeRow
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r encodeRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 99 {
		t.Fatalf("encode.jsonl: %d rows, want 99", len(rows))
	}
	return rows
}

// TestReferenceEncodeDecode checks every row that transformers produced.
func TestReferenceEncodeDecode(t *testing.T) {
	tok := gemma3(t)
	for i, r := range readEncodeRows(t) {
		if got := tok.Encode(r.Text, false); !slices.Equal(got, r.IDs) {
			t.Errorf("row %d %q: ids\n got %v\nwant %v", i, r.Text, got, r.IDs)
		}
		if got := tok.Encode(r.Text, true); !slices.Equal(got, r.IDsWithSpecial) {
			t.Errorf("row %d %q: ids with special\n got %v\nwant %v", i, r.Text, got, r.IDsWithSpecial)
		}
		for j, id := range r.IDs {
			if got := tok.Token(id); got != r.Tokens[j] {
				t.Errorf("row %d: Token(%d) = %q, want %q", i, id, got, r.Tokens[j])
			}
		}
		if got := tok.Decode(r.IDs, false); got != r.Decoded {
			t.Errorf("row %d: decode = %q, want %q", i, got, r.Decoded)
		}
		if got := tok.Decode(r.IDs, true); got != r.DecodedSkipSpecial {
			t.Errorf("row %d: decode skipping special = %q, want %q", i, got, r.DecodedSkipSpecial)
		}
	}
}

// TestEncodeConcurrent checks that encodings served from the piece cache equal
// the first ones, under concurrent use.
func TestEncodeConcurrent(t *testing.T) {
	tok := gemma3(t)
	rows := readEncodeRows(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rows {
				r := rows[(i+w*17)%len(rows)]
				if got := tok.Encode(r.Text, false); !slices.Equal(got, r.IDs) {
					t.Errorf("worker %d: %q encodes differently the second time", w, r.Text)
				}
			}
		}()
	}
	wg.Wait()
}

func TestSpecialTokenIDs(t *testing.T) {
	tok := gemma3(t)
	for _, c := range []struct {
		token   string
		id      int32
		special bool
	}{
		{"<pad>", 0, true}, {"<eos>", 1, true}, {"<bos>", 2, true}, {"<unk>", 3, true},
		{"<start_of_turn>", 105, true}, {"<end_of_turn>", 106, true}, {"\n", 107, false},
		{"<start_of_image>", 255999, true}, {"<end_of_image>", 256000, true},
		{"<image_soft_token>", 262144, true}, {"<unused94>", 6 + 94, false}, {"▁the", 506, false},
		// transformers' GemmaTokenizer makes <mask> its mask token, hence special.
		{"<mask>", 4, true},
	} {
		id, ok := tok.ID(c.token)
		if !ok || id != c.id {
			t.Errorf("ID(%q) = %d, %v; want %d", c.token, id, ok, c.id)
		}
		if got := tok.IsSpecial(c.id); got != c.special {
			t.Errorf("IsSpecial(%d) = %v, want %v", c.id, got, c.special)
		}
	}
	if tok.Len() != 262145 {
		t.Errorf("Len() = %d, want 262145", tok.Len())
	}
	if got := tok.SpecialPrefix(); !slices.Equal(got, []int32{2}) {
		t.Errorf("SpecialPrefix() = %v, want [2]", got)
	}
	// Ids beyond the tokenizer (the model's vocabulary has 262,208 rows) decode to nothing.
	if got := tok.Decode([]int32{9259, 262200, -1, 236764}, false); got != "Hello," {
		t.Errorf("decode with unknown ids = %q", got)
	}
}

func TestInvalidUTF8GoesThroughByteFallback(t *testing.T) {
	tok := gemma3(t)
	b0, _ := tok.ID("<0xFF>")
	b1, _ := tok.ID("<0xC3>")
	a, _ := tok.ID("a")
	got := tok.Encode("\xffa\xc3", false)
	if want := []int32{b0, a, b1}; !slices.Equal(got, want) {
		t.Fatalf("Encode(invalid UTF-8) = %v, want %v", got, want)
	}
	if d := tok.Decode(got, false); d != "\uFFFDa\uFFFD" {
		t.Errorf("Decode = %q", d)
	}
	// A run of byte tokens that is valid as a whole decodes to its character; a
	// run with an invalid byte becomes one U+FFFD per byte.
	e2, _ := tok.ID("<0xE2>")
	x82, _ := tok.ID("<0x82>")
	xac, _ := tok.ID("<0xAC>")
	x41, _ := tok.ID("<0x41>")
	if d := tok.Decode([]int32{e2, x82, xac, a}, false); d != "€a" {
		t.Errorf("Decode(€ as bytes) = %q", d)
	}
	if d := tok.Decode([]int32{x41, e2, x82, a}, false); d != "\uFFFD\uFFFD\uFFFDa" {
		t.Errorf("Decode(invalid run) = %q", d)
	}
}

func TestStreamDecoder(t *testing.T) {
	tok := gemma3(t)
	for _, skip := range []bool{false, true} {
		for i, r := range readEncodeRows(t) {
			ids := r.IDsWithSpecial
			want := tok.Decode(ids, skip)
			if !utf8.ValidString(r.Text) {
				continue
			}
			d := tok.NewStreamDecoder(skip)
			var out []byte
			for _, id := range ids {
				before := len(out)
				out = d.Append(out, id)
				if !utf8.Valid(out[before:]) {
					t.Errorf("row %d: stream released incomplete UTF-8 %q", i, out[before:])
				}
			}
			out = d.Flush(out)
			if string(out) != want {
				t.Errorf("row %d skip=%v: stream = %q, want %q", i, skip, out, want)
			}
		}
	}
	// Bytes of one character split across tokens are held until complete.
	e2, _ := tok.ID("<0xE2>")
	x82, _ := tok.ID("<0x82>")
	xac, _ := tok.ID("<0xAC>")
	d := tok.NewStreamDecoder(false)
	if out := d.Append(nil, e2); len(out) != 0 {
		t.Errorf("first byte of € released %q", out)
	}
	if out := d.Append(nil, x82); len(out) != 0 {
		t.Errorf("second byte of € released %q", out)
	}
	if out := d.Append(nil, xac); string(out) != "€" {
		t.Errorf("third byte of € released %q", out)
	}
	d.Append(nil, e2)
	if out := d.Flush(nil); string(out) != "\uFFFD" {
		t.Errorf("Flush of an incomplete character = %q", out)
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		buf = d.Append(buf[:0], 9259)
		buf = d.Append(buf[:0], e2)
		buf = d.Append(buf[:0], x82)
		buf = d.Append(buf[:0], xac)
	}); n != 0 {
		t.Errorf("StreamDecoder.Append allocates %v times per run", n)
	}
}

func TestTokenBytes(t *testing.T) {
	tok := testtok.Gemma3(t)
	ids := tok.Encode("Hello 😀 x", false)
	var all []byte
	for _, id := range ids {
		all = append(all, tok.Bytes(id)...)
	}
	if string(all) != "Hello 😀 x" {
		t.Errorf("bytes of %v: %q", ids, all)
	}
	if tok.Bytes(-1) != nil || tok.Bytes(int32(tok.Len())) != nil {
		t.Error("bytes of an id that names no token")
	}
}
