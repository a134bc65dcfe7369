package grammar

import "testing"

// FuzzGBNF: any source either fails with ErrGrammar or compiles, and the
// compiled grammar matches any input, within the limits, without
// panicking.
func FuzzGBNF(f *testing.F) {
	f.Add(jsonGBNF, []byte(`{"a": [1, "x"]}`))
	f.Add(`root ::= "a"+ [b-d]? "é" .`, []byte("aab"))
	f.Add("root ::= x{2,3}\nx ::= \"x\" | root", []byte("xxx"))
	f.Add(`root ::= [^a-c\]]* "\x41" (r)?`+"\nr ::= \"r\"", []byte("zA"))
	f.Fuzz(func(t *testing.T, src string, input []byte) {
		g, err := ParseGBNF(src)
		if err != nil {
			return
		}
		c, err := g.Compile()
		if err != nil {
			return
		}
		m := c.NewMatcher()
		for i := range input {
			if !m.Advance(input[i : i+1]) {
				break
			}
		}
		_ = m.Done()
	})
}
