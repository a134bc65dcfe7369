package grammar

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// testVocab is every single byte plus random strings of JSON pieces (as
// a real vocabulary has words, punctuation runs and spaces), some ids
// empty (special tokens) and some strings twice.
func testVocab(rng *rand.Rand) [][]byte {
	var toks [][]byte
	for b := range 256 {
		toks = append(toks, []byte{byte(b)})
	}
	toks = append(toks, nil, nil)
	for range 3000 {
		toks = append(toks, randomJSONish(rng))
	}
	toks = append(toks, []byte(`":`), []byte(`",`), []byte(`"}`), []byte(`"},`), []byte(`  `), []byte(` "`), []byte(`1,`), toks[300])
	return toks
}

// allows reports whether m accepts tok next, leaving m as it is.
func allows(m *Matcher, tok []byte) bool {
	cur := m.cur
	for _, b := range tok {
		next, ok := m.k.step(nil, cur, b)
		if !ok {
			panic("limits")
		}
		if len(next) == 0 {
			return false
		}
		cur = next
	}
	return true
}

// checkMask compares m's mask with each token tried one by one.
func checkMask(t *testing.T, m *Matcher, v *Vocab, toks [][]byte, prefix []byte) {
	t.Helper()
	mask := make([]uint64, v.MaskWords())
	if err := m.Mask(v, mask); err != nil {
		t.Fatal(err)
	}
	for id, tok := range toks {
		got := mask[id/64]>>(id%64)&1 == 1
		want := len(tok) > 0 && allows(m, tok)
		if got != want {
			t.Fatalf("after %q: token %d %q allowed %v, tried alone %v", prefix, id, tok, got, want)
		}
	}
}

// TestMaskMatchesEachToken: at random points of random documents, the mask
// holds exactly the tokens whose bytes the matcher accepts, for grammars
// with recursion (JSON) and bounded whitespace (json_object).
func TestMaskMatchesEachToken(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	toks := testVocab(rng)
	v := NewVocab(toks)
	docs := []string{`{"a": [1, 2.5e-3, "x\u00e9"], "b": {"c": null}, "d": true}`, `{ "k" : [ [ ], { } , "v\n" ] }`, `{"num": -0.5E+12}`}
	for _, g := range []*Grammar{JSON(), JSONObject()} {
		c, err := g.Compile()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			m := c.NewMatcher()
			for i := 0; i <= len(d); i++ {
				checkMask(t, m, v, toks, []byte(d[:i]))
				if i < len(d) && !m.Advance([]byte{d[i]}) {
					t.Fatalf("%q refused at %d", d, i)
				}
			}
			if !m.Done() {
				t.Fatalf("%q: not done", d)
			}
		}
	}
}

// TestTooAmbiguous: a grammar whose stacks multiply with each byte stops
// at MaxConfigs with an error, in Advance and in Mask, instead of taking
// memory and time without bound.
func TestTooAmbiguous(t *testing.T) {
	// Each a opens a y or a z frame: after n a's, 2^n stacks.
	g, err := ParseGBNF("root ::= x\nx ::= \"a\" y | \"a\" z | \"\"\ny ::= x\nz ::= x \"b\"")
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Compile()
	if err != nil {
		t.Fatal(err)
	}
	m := c.NewMatcher()
	n := 0
	for ; n < 30 && m.Advance([]byte("a")); n++ {
	}
	if n == 30 || m.Err() == nil {
		t.Fatalf("advanced %d bytes, error %v", n, m.Err())
	}
	if !errors.Is(m.Err(), ErrGrammar) {
		t.Fatalf("error %v is not ErrGrammar", m.Err())
	}
	if !c.Match([]byte("aaab")) || c.Match([]byte("abb")) {
		t.Fatal("short inputs: wrong answers")
	}
}

// TestMaskCacheBound: a grammar keeps at most its limit of masks; past it
// masks are computed where used, and stay right.
func TestMaskCacheBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	toks := testVocab(rng)
	v := NewVocab(toks)
	g, err := FromJSONSchema([]byte(`{"type":"string","maxLength":60}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Compile()
	if err != nil {
		t.Fatal(err)
	}
	c.masks.limit = 5 * int64(8*v.MaskWords())
	m := c.NewMatcher()
	doc := `"` + strings.Repeat("ab", 30) + `"`
	for i := 0; i <= len(doc); i++ {
		checkMask(t, m, v, toks, []byte(doc[:i]))
		if got := c.masks.bytes.Load(); got > c.masks.limit {
			t.Fatalf("after %d bytes the masks keep %d bytes, over the limit %d", i, got, c.masks.limit)
		}
		if i < len(doc) && !m.Advance([]byte{doc[i]}) {
			t.Fatalf("refused at %d", i)
		}
	}
	if c.masks.bytes.Load() == 0 {
		t.Fatal("nothing was kept")
	}
}
