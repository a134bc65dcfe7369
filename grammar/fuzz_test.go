package grammar

import (
	"errors"
	"testing"
)

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

// FuzzJSONSchema: any schema document either fails with ErrGrammar or
// compiles (patterns, bounds and formats included), and matching any
// input against it does not panic.
func FuzzJSONSchema(f *testing.F) {
	f.Add([]byte(radiologySchema), []byte(`{"study_date":"2024-01-01"}`))
	f.Add([]byte(`{"type":"string","pattern":"^(a|b\\.c)*[^x-z]{1,3}$"}`), []byte(`"ab.c"`))
	f.Add([]byte(`{"type":"number","minimum":-1.5e2,"maximum":0.25}`), []byte(`-12.5`))
	f.Add([]byte(`{"$defs":{"n":{"anyOf":[{"type":"null"},{"type":"array","items":{"$ref":"#/$defs/n"}}]}},"$ref":"#/$defs/n"}`), []byte(`[[null]]`))
	f.Fuzz(func(t *testing.T, schema, input []byte) {
		g, err := FromJSONSchema(schema)
		if err != nil {
			if !errors.Is(err, ErrGrammar) {
				t.Fatalf("error %v is not ErrGrammar", err)
			}
			return
		}
		c, err := g.Compile()
		if err != nil {
			return
		}
		_ = c.Match(input)
	})
}
