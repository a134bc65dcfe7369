package grammar

import (
	"errors"
	"strings"
	"testing"
)

// llama.cpp's json.gbnf, as its grammars directory has it.
const jsonGBNF = `root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
`

func TestGBNF(t *testing.T) {
	for _, c := range []struct {
		src       string
		match     []string
		dontMatch []string
	}{
		{jsonGBNF,
			[]string{`{}`, `{"a": [1, -2.5e3, "x\u00e9", true, null]}`, "{\"k\":\n  {\"v\": \"é€\"}}"},
			[]string{`[1]`, `{"a":}`, `{"a": 01}`, "{\"x\": \"\x7f\"}", `{"a": 1`}},
		{`root ::= "a"+ [b-d]? "é" .`, []string{"aé€", "aabé😀", "acé\n"}, []string{"é€", "aeé€", "aé", "aé€€"}},
		{"root ::= x{2,3} y{,2} z{2,}\nx ::= \"x\"\ny ::= \"y\"\nz ::= \"z\"", []string{"xxzz", "xxxyyzzz"}, []string{"xzz", "xxxxzz", "xxyyyzz", "xxz"}},
		{`root ::= [^a-c\]\\]* "\x41\u00E9\U0001F600" # comment`, []string{"xyzAé😀", "]Aé😀"[1:]}, []string{"aAé😀", "]Aé😀", `\Aé😀`}},
		{"root ::= (\n  \"a\" |\n  \"b\"\n) \"c\"?", []string{"a", "bc"}, []string{"c", "ab"}},
		{`root ::= "[" ( item ( "," item )* )? "]"
item ::= [0-9]+ | root`, []string{"[]", "[1,[2,[]],3]"}, []string{"[", "[1,]", "[[]"}},
		{`root ::= ""`, []string{""}, []string{"a"}},
		{`root ::= [-a] [a-]`, []string{"--", "aa", "-a"}, []string{"b-"}},
	} {
		g, err := ParseGBNF(c.src)
		if err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		comp, err := g.Compile()
		if err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		for _, s := range c.match {
			if !comp.Match([]byte(s)) {
				t.Errorf("%q: %q not matched", c.src, s)
			}
		}
		for _, s := range c.dontMatch {
			if comp.Match([]byte(s)) {
				t.Errorf("%q: %q matched", c.src, s)
			}
		}
	}
}

func TestGBNFErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`rot ::= "a"`, "no rule named root"},
		{`root ::= a`, `rule "a" is used but not defined`},
		{`root ::= "a`, "line 1, column 10: unterminated literal"},
		{"root ::= \"a\"\nroot ::= \"b\"", `line 2, column 5: rule "root" is defined twice`},
		{`root ::= [a`, "unterminated character class"},
		{`root ::= [z-a]`, "backwards"},
		{`root ::= "a"{3,1}`, "backwards"},
		{`root ::= "a"{x}`, "expected a number"},
		{`root ::= "a"{1000001}`, "is over"},
		{`root ::= ("a"`, "expected )"},
		{`root ::= "\q"`, `unknown escape \q`},
		{`root ::= "\uD800"`, `bad escape`},
		{`root ::= <think>`, "token references"},
		{`root ::= "a" )`, `unexpected ")"`},
		{"root = \"a\"", "expected ::="},
		{`root ::= root "a"`, "left recursion: root -> root"},
		{"root ::= x \"a\"\nx ::= y? root\ny ::= \"y\"", "left recursion: root -> x -> root"},
		{`root ::= "a"{100000}{100000}`, "automaton states"},
		{"root ::= \"\xff\"", "not valid UTF-8"},
		{`root ::= ` + strings.Repeat("(", 300) + `"a"` + strings.Repeat(")", 300), "nested more than"},
	} {
		g, err := ParseGBNF(c.src)
		if err == nil {
			_, err = g.Compile()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrGrammar) {
			t.Errorf("%q: error %v, want one containing %q", c.src, err, c.want)
		}
	}
}
