package grammar

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// jsonPrefix reports whether s is valid JSON (whole) or the start of some
// valid JSON (prefix), as encoding/json's scanner decides: it reports the
// first byte no JSON could have, so s is a prefix when, followed by a NUL
// (which JSON never has), the NUL is that byte.
func jsonPrefix(s []byte) (prefix, whole bool) {
	var v any
	err := json.Unmarshal(append(s[:len(s):len(s)], 0), &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		panic(err)
	}
	return se.Offset == int64(len(s))+1, json.Valid(s)
}

// randomJSONish draws strings from pieces of JSON, mostly well formed
// (valid documents, cut and spliced) and partly random.
func randomJSONish(rng *rand.Rand) []byte {
	pieces := []string{"{", "}", "[", "]", ",", ":", `"`, `\`, `\u00e9`, `\n`, `\x`, "u", "0", "1", "9", "-", "+", ".", "e", "E",
		"true", "false", "null", "tru", "nul", " ", "\n", "\t", "a", "é", "€", "😀", "\x01", "\x7f", `"k"`, `{"a":1}`, "[1,2]", "00", "01"}
	var b strings.Builder
	for range rng.IntN(12) {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	s := []byte(b.String())
	if rng.IntN(3) == 0 {
		docs := []string{`{"a": [1, 2.5e-3, "x\u00e9"], "b": {"c": null}}`, `[true, false, -0.5, {"k": "v\n"}]`, `"€ and 😀"`, `-12.75E+2`, ` { } `, `[[[]]]`}
		d := docs[rng.IntN(len(docs))]
		s = []byte(d[:rng.IntN(len(d)+1)])
	}
	return s
}

// TestJSONGrammarMatchesEncodingJSON: on random strings of JSON pieces, the
// JSON grammar's matcher accepts exactly the prefixes of valid JSON, and
// ends exactly where encoding/json accepts the whole.
func TestJSONGrammarMatchesEncodingJSON(t *testing.T) {
	c, err := JSON().Compile()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var prefixes, wholes int
	for range 20000 {
		s := randomJSONish(rng)
		m := c.NewMatcher()
		// Byte by byte: the matcher refuses at the first byte that makes
		// s no prefix, and not before.
		for i := range s {
			wantPrefix, _ := jsonPrefix(s[:i+1])
			if got := m.Advance(s[i : i+1]); got != wantPrefix {
				t.Fatalf("%q: byte %d (%q) accepted %v, encoding/json says prefix %v", s, i, s[i], got, wantPrefix)
			}
			if !wantPrefix {
				break
			}
		}
		prefix, whole := jsonPrefix(s)
		if prefix {
			prefixes++
			if m.Done() != whole {
				t.Fatalf("%q: Done %v, encoding/json valid %v", s, m.Done(), whole)
			}
		}
		if whole {
			wholes++
		}
		if c.Match(s) != whole {
			t.Fatalf("%q: Match %v, encoding/json valid %v", s, !whole, whole)
		}
	}
	if prefixes < 2000 || wholes < 500 {
		t.Fatalf("the strings reach too few cases: %d prefixes, %d whole documents", prefixes, wholes)
	}
	t.Logf("%d prefixes, %d whole documents", prefixes, wholes)
}

// TestJSONGrammarUTF8: strings must be valid UTF-8 (stricter than
// encoding/json, which passes invalid bytes through).
func TestJSONGrammarUTF8(t *testing.T) {
	c, err := JSON().Compile()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"\"\xff\"", "\"\xc3\"", "\"\xed\xa0\x80\"", "\"\xc0\xaf\""} {
		if c.Match([]byte(s)) {
			t.Errorf("%q matched", s)
		}
	}
	for _, s := range []string{`"é€😀"`, "\"\u07ff\ue000\U0010ffff\""} {
		if !c.Match([]byte(s)) {
			t.Errorf("%q not matched", s)
		}
	}
}

// TestJSONObjectSpace: json_object's grammar bounds the whitespace between
// tokens and wants an object.
func TestJSONObjectSpace(t *testing.T) {
	c, err := JSONObject().Compile()
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{`{"a": 1}`, "{\n  \"a\":\n\t1\n}", `{"a":` + "\n" + strings.Repeat(" ", MaxIndent) + `1}`} {
		if !c.Match([]byte(ok)) {
			t.Errorf("%q not matched", ok)
		}
	}
	for _, s := range []string{`{"a":` + "\n" + strings.Repeat(" ", MaxIndent+1) + `1}`, `{"a":  1}`, "{\"a\":\n\n1}", `[1]`, ` {}`, `"x"`} {
		if c.Match([]byte(s)) {
			t.Errorf("%q matched", s)
		}
	}
}
