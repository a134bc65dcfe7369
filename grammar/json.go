package grammar

// MaxIndent bounds the whitespace the JSON grammars of answers allow
// between two tokens of JSON: nothing, one space, or a newline and up to
// MaxIndent spaces or tabs (as llama.cpp's JSON-schema grammars allow), so
// a model that has lost its way cannot write endless runs of blanks.
const MaxIndent = 20

// jsonRules adds the rules of JSON values to g: value, object, array,
// string, number; space is what may separate tokens.
type jsonRules struct {
	g     *Grammar
	space *expr
}

// newJSONRules: bounded, the answers' whitespace (MaxIndent); otherwise
// any run of whitespace, as JSON itself.
func newJSONRules(g *Grammar, bounded bool) *jsonRules {
	ws := bytesExpr(' ', ' ')
	ws.set.add('\t', '\t')
	ws.set.add('\n', '\n')
	ws.set.add('\r', '\r')
	j := &jsonRules{g: g, space: repeat(ws, 0, -1)}
	if bounded {
		indent := bytesExpr(' ', ' ')
		indent.set.add('\t', '\t')
		j.space = opt(alt(literal(" "), seq(literal("\n"), repeat(indent, 0, MaxIndent))))
	}
	return j
}

func (j *jsonRules) ws() *expr { return j.space }

// stringChar is one character of a JSON string: any code point but the
// quote, the backslash and the controls, or an escape.
func stringChar() *expr {
	hex := bytesExpr('0', '9')
	hex.set.add('a', 'f')
	hex.set.add('A', 'F')
	esc := bytesExpr('"', '"')
	for _, c := range `\/bfnrt` {
		esc.set.add(byte(c), byte(c))
	}
	return alt(
		utf8Class([]runeRange{{0, 0x1F}, {'"', '"'}, {'\\', '\\'}}, true),
		seq(literal(`\`), alt(esc, seq(literal("u"), repeat(hex, 4, 4)))),
	)
}

// number is JSON's number.
func number() *expr {
	digit := bytesExpr('0', '9')
	e := bytesExpr('e', 'e')
	e.set.add('E', 'E')
	sign := bytesExpr('-', '-')
	sign.set.add('+', '+')
	return seq(
		opt(literal("-")),
		alt(literal("0"), seq(bytesExpr('1', '9'), repeat(digit, 0, -1))),
		opt(seq(literal("."), repeat(digit, 1, -1))),
		opt(seq(e, opt(sign), repeat(digit, 1, -1))),
	)
}

// define adds value and what it calls; objects and arrays recurse through
// value.
func (j *jsonRules) define() {
	g := j.g
	g.define("value", alt(g.ref("object"), g.ref("array"), g.ref("string"), g.ref("number"),
		literal("true"), literal("false"), literal("null")))
	member := seq(g.ref("string"), j.ws(), literal(":"), j.ws(), g.ref("value"), j.ws())
	g.define("object", seq(literal("{"), j.ws(),
		opt(seq(member, repeat(seq(literal(","), j.ws(), member), 0, -1))), literal("}")))
	element := seq(g.ref("value"), j.ws())
	g.define("array", seq(literal("["), j.ws(),
		opt(seq(element, repeat(seq(literal(","), j.ws(), element), 0, -1))), literal("]")))
	g.define("string", seq(literal(`"`), repeat(stringChar(), 0, -1), literal(`"`)))
	g.define("number", number())
}

// JSON is any JSON value with whitespace around it as JSON allows it
// (unbounded): the grammar encoding/json's Valid accepts, except that
// strings must be valid UTF-8.
func JSON() *Grammar {
	g := newGrammar("root")
	j := newJSONRules(g, false)
	g.define("root", seq(j.ws(), g.ref("value"), j.ws()))
	j.define()
	return g
}

// JSONObject is what OpenAI's response_format {"type": "json_object"}
// asks for: one JSON object, whitespace between tokens bounded
// (MaxIndent), none around it.
func JSONObject() *Grammar {
	g := newGrammar("root")
	j := newJSONRules(g, true)
	g.define("root", g.ref("object"))
	j.define()
	return g
}
