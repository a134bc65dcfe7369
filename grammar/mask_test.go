package grammar

import (
	"math/rand/v2"
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

// checkMask compares m's mask with each token tried one by one.
func checkMask(t *testing.T, m *Matcher, c *Compiled, v *Vocab, toks [][]byte, prefix []byte) {
	t.Helper()
	mask := make([]uint64, v.MaskWords())
	m.Mask(v, mask)
	for id, tok := range toks {
		got := mask[id/64]>>(id%64)&1 == 1
		want := false
		if len(tok) > 0 {
			n := c.NewMatcher()
			want = n.Advance(prefix) && n.Advance(tok)
		}
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
				checkMask(t, m, c, v, toks, []byte(d[:i]))
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
