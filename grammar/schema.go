package grammar

import (
	"bytes"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// FromJSONSchema compiles a JSON Schema into the grammar of the JSON
// documents it accepts, as OpenAI's structured outputs, vLLM and
// llama.cpp constrain answers. Supported: type (one or a list);
// properties (in the schema's order), required, additionalProperties
// (false, true or absent: only the listed properties are written; a
// schema: an object of any keys with such values, when there are no
// properties); items, minItems, maxItems; enum, const; anyOf; $ref to
// "#", "#/$defs/..." or "#/definitions/..." (recursion included);
// pattern; format date, time, date-time, email, uuid; minimum, maximum
// (and exclusive ones for integers); minLength, maxLength; annotations
// (title, description, default, examples, ...) are ignored. Any other
// keyword is an error that names it and where it is: the answer could
// otherwise break it. The grammar writes no whitespace around the
// document and little between tokens (MaxIndent).
func FromJSONSchema(schema []byte) (*Grammar, error) {
	root, err := parseOrdered(schema)
	if err != nil {
		return nil, err
	}
	sc := &schemaCompiler{g: newGrammar("root"), root: root, defs: map[string]string{}, shared: map[string]string{}}
	sc.j = newJSONRules(sc.g, true)
	e, err := sc.compile(root, "")
	if err != nil {
		return nil, err
	}
	sc.g.define("root", e)
	for len(sc.todo) > 0 {
		d := sc.todo[0]
		sc.todo = sc.todo[1:]
		e, err := sc.compile(d.schema, d.path)
		if err != nil {
			return nil, err
		}
		sc.g.define(d.rule, e)
	}
	if sc.generic {
		sc.j.define()
	}
	return sc.g, nil
}

type schemaCompiler struct {
	g       *Grammar
	j       *jsonRules
	root    *jsonValue
	defs    map[string]string // a $ref's target -> its rule
	shared  map[string]string // a value rule's body (as text) -> its name
	todo    []pendingDef
	generic bool // the JSON value rules are used
	n       int
}

type pendingDef struct {
	rule, path string
	schema     *jsonValue
}

// Annotations and containers that constrain nothing.
var ignoredKeywords = []string{"title", "description", "default", "examples", "$schema", "$id", "$comment",
	"deprecated", "readOnly", "writeOnly", "$defs", "definitions"}

var supportedKeywords = []string{"type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
	"enum", "const", "anyOf", "$ref", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
	"minLength", "maxLength"}

// Limits on what a schema asks to be spelled out.
const (
	maxSchemaLength = 4096 // minLength, maxLength
	maxSchemaItems  = 4096 // minItems, maxItems
)

func schemaError(path, format string, args ...any) error {
	if path == "" {
		path = "/"
	}
	return grammarError("schema at %s: %s", path, fmt.Sprintf(format, args...))
}

func (sc *schemaCompiler) newRule(prefix string) string {
	sc.n++
	return fmt.Sprintf("%s-%d", prefix, sc.n)
}

// value is a rule calling the generic JSON value.
func (sc *schemaCompiler) anyValue() *expr {
	sc.generic = true
	return sc.g.ref("value")
}

func (sc *schemaCompiler) ws() *expr { return sc.j.ws() }

// compile returns an expression for the JSON text of the values schema s
// (at path) accepts.
func (sc *schemaCompiler) compile(s *jsonValue, path string) (*expr, error) {
	if sc.n > MaxRules {
		return nil, schemaError(path, "more than %d rules", MaxRules)
	}
	switch s.kind {
	case 'b':
		if s.boolean {
			return sc.anyValue(), nil
		}
		return nil, schemaError(path, "the schema false accepts nothing")
	case 'o':
	default:
		return nil, schemaError(path, "a schema must be an object or a boolean")
	}
	for _, m := range s.members {
		if !slices.Contains(supportedKeywords, m.key) && !slices.Contains(ignoredKeywords, m.key) {
			return nil, schemaError(path, "keyword %q is not supported", m.key)
		}
	}
	constraints := func(except ...string) []string {
		var out []string
		for _, m := range s.members {
			if slices.Contains(supportedKeywords, m.key) && !slices.Contains(except, m.key) {
				out = append(out, m.key)
			}
		}
		return out
	}
	if ref := s.get("$ref"); ref != nil {
		if others := constraints("$ref"); len(others) > 0 {
			return nil, schemaError(path, "%q beside $ref is not supported", others[0])
		}
		return sc.ref(ref, path)
	}
	if v := s.get("const"); v != nil {
		return jsonLiteral(v), nil
	}
	if v := s.get("enum"); v != nil {
		if v.kind != 'a' || len(v.items) == 0 {
			return nil, schemaError(path+"/enum", "enum must be a non-empty array")
		}
		var alts []*expr
		for _, it := range v.items {
			alts = append(alts, jsonLiteral(it))
		}
		return alt(alts...), nil
	}
	if v := s.get("anyOf"); v != nil {
		if others := constraints("anyOf"); len(others) > 0 {
			return nil, schemaError(path, "%q beside anyOf is not supported (put it in each branch)", others[0])
		}
		if v.kind != 'a' || len(v.items) == 0 {
			return nil, schemaError(path+"/anyOf", "anyOf must be a non-empty array")
		}
		var alts []*expr
		for i, it := range v.items {
			e, err := sc.compile(it, fmt.Sprintf("%s/anyOf/%d", path, i))
			if err != nil {
				return nil, err
			}
			alts = append(alts, e)
		}
		return alt(alts...), nil
	}
	types, err := schemaTypes(s, path)
	if err != nil {
		return nil, err
	}
	var alts []*expr
	for _, t := range types {
		e, err := sc.typed(s, t, path)
		if err != nil {
			return nil, err
		}
		alts = append(alts, e)
	}
	return alt(alts...), nil
}

// schemaTypes is the types a schema allows: its type keyword, or what its
// other keywords imply, or every one ("" for any JSON value).
func schemaTypes(s *jsonValue, path string) ([]string, error) {
	all := []string{"object", "array", "string", "number", "integer", "boolean", "null"}
	t := s.get("type")
	if t == nil {
		has := func(keys ...string) bool {
			for _, k := range keys {
				if s.get(k) != nil {
					return true
				}
			}
			return false
		}
		switch {
		case has("properties", "required", "additionalProperties"):
			return []string{"object"}, nil
		case has("items", "minItems", "maxItems"):
			return []string{"array"}, nil
		case has("pattern", "format", "minLength", "maxLength"):
			return []string{"string"}, nil
		case has("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
			return []string{"number"}, nil
		}
		return []string{""}, nil
	}
	var out []string
	add := func(v *jsonValue) error {
		if v.kind != 's' || !slices.Contains(all, v.str) {
			var b bytes.Buffer
			v.encode(&b)
			return schemaError(path+"/type", "unknown type %s", b.String())
		}
		if !slices.Contains(out, v.str) {
			out = append(out, v.str)
		}
		return nil
	}
	switch t.kind {
	case 'a':
		for _, it := range t.items {
			if err := add(it); err != nil {
				return nil, err
			}
		}
		if len(out) == 0 {
			return nil, schemaError(path+"/type", "an empty list of types accepts nothing")
		}
	default:
		if err := add(t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// jsonLiteral matches v's compact JSON text.
func jsonLiteral(v *jsonValue) *expr {
	var b bytes.Buffer
	v.encode(&b)
	return literal(b.String())
}

// ref compiles a $ref: to the root, or to a definition (a rule, so that
// definitions may recurse).
func (sc *schemaCompiler) ref(ref *jsonValue, path string) (*expr, error) {
	if ref.kind != 's' {
		return nil, schemaError(path+"/$ref", "$ref must be a string")
	}
	target := ref.str
	if target == "#" {
		return sc.g.ref("root"), nil
	}
	if rule, ok := sc.defs[target]; ok {
		return sc.g.ref(rule), nil
	}
	var container, name string
	for _, c := range []string{"#/$defs/", "#/definitions/"} {
		if strings.HasPrefix(target, c) {
			container, name = c[2:len(c)-1], target[len(c):]
		}
	}
	if container == "" || strings.Contains(name, "/") {
		return nil, schemaError(path+"/$ref", "$ref %q is not supported (only #, #/$defs/NAME and #/definitions/NAME)", target)
	}
	name = strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~")
	defs := sc.root.get(container)
	var def *jsonValue
	if defs != nil {
		def = defs.get(name)
	}
	if def == nil {
		return nil, schemaError(path+"/$ref", "$ref %q names no definition", target)
	}
	rule := sc.newRule("def")
	sc.defs[target] = rule
	sc.todo = append(sc.todo, pendingDef{rule, "/" + container + "/" + name, def})
	return sc.g.ref(rule), nil
}

// typed compiles s for one type ("" for any value).
func (sc *schemaCompiler) typed(s *jsonValue, t, path string) (*expr, error) {
	// Keywords of another type are ignored by JSON Schema when the value
	// is not of that type; with a type list, each branch takes its own.
	switch t {
	case "":
		return sc.anyValue(), nil
	case "null":
		return literal("null"), nil
	case "boolean":
		return alt(literal("true"), literal("false")), nil
	case "integer", "number":
		return sc.number(s, t == "integer", path)
	case "string":
		return sc.str(s, path)
	case "array":
		return sc.array(s, path)
	}
	return sc.object(s, path)
}

func (sc *schemaCompiler) bound(s *jsonValue, key, path string) (*decimal, error) {
	v := s.get(key)
	if v == nil {
		return nil, nil
	}
	if v.kind != 'n' {
		return nil, schemaError(path+"/"+key, "%s must be a number", key)
	}
	d, err := parseDecimal(v.num)
	if err != nil {
		return nil, schemaError(path+"/"+key, "%v", err)
	}
	return &d, nil
}

func (sc *schemaCompiler) number(s *jsonValue, integer bool, path string) (*expr, error) {
	var b [4]*decimal
	for i, k := range []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} {
		var err error
		if b[i], err = sc.bound(s, k, path); err != nil {
			return nil, err
		}
	}
	if !integer {
		for i, k := range []string{"exclusiveMinimum", "exclusiveMaximum"} {
			if b[2+i] != nil {
				return nil, schemaError(path+"/"+k, "%s is supported for integers only", k)
			}
		}
		if b[0] == nil && b[1] == nil {
			return number(), nil
		}
		if b[0] != nil && b[1] != nil && b[0].rat().Cmp(b[1].rat()) > 0 {
			return nil, schemaError(path, "minimum is above maximum")
		}
		return decimalRange(b[0], b[1]), nil
	}
	// Integers: the bounds rounded inward, the exclusive ones moved by one.
	var lo, hi *big.Int
	tighten := func(d *decimal, up, exclusive bool) {
		r := d.rat()
		q := new(big.Int).Quo(r.Num(), r.Denom()) // toward zero
		exact := new(big.Rat).SetInt(q).Cmp(r) == 0
		switch {
		case up && (!exact && r.Sign() > 0 || exact && exclusive):
			q.Add(q, big.NewInt(1))
		case !up && (!exact && r.Sign() < 0 || exact && exclusive):
			q.Sub(q, big.NewInt(1))
		}
		if up && (lo == nil || q.Cmp(lo) > 0) {
			lo = q
		}
		if !up && (hi == nil || q.Cmp(hi) < 0) {
			hi = q
		}
	}
	for i, d := range b {
		if d != nil {
			tighten(d, i%2 == 0, i >= 2)
		}
	}
	if lo != nil && hi != nil && lo.Cmp(hi) > 0 {
		return nil, schemaError(path, "no integer lies between the minimum and the maximum")
	}
	return integerRange(lo, hi), nil
}

// schemaChar is one character of a string, as the JSON text has it:
// escapes of surrogates are left out, so that each match is one code
// point and length bounds count right.
func schemaChar() *expr {
	return jsonChars(nil, true)
}

// size reads a count keyword (minLength, maxItems, ...): absent, or an
// integer in 0..limit.
func size(s *jsonValue, key, path string, limit int) (int, bool, error) {
	v := s.get(key)
	if v == nil {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v.num.String())
	if v.kind != 'n' || err != nil || n < 0 {
		return 0, false, schemaError(path+"/"+key, "%s must be a non-negative integer", key)
	}
	if n > limit {
		return 0, false, schemaError(path+"/"+key, "%s %d is over the %d supported", key, n, limit)
	}
	return n, true, nil
}

func (sc *schemaCompiler) str(s *jsonValue, path string) (*expr, error) {
	minLen, hasMin, err := size(s, "minLength", path, maxSchemaLength)
	if err != nil {
		return nil, err
	}
	maxLen, hasMax, err := size(s, "maxLength", path, maxSchemaLength)
	if err != nil {
		return nil, err
	}
	if !hasMax {
		maxLen = -1
	} else if maxLen < minLen {
		return nil, schemaError(path, "minLength is above maxLength")
	}
	quote := literal(`"`)
	if f := s.get("format"); f != nil {
		if s.get("pattern") != nil || hasMin || hasMax {
			return nil, schemaError(path, "format with pattern, minLength or maxLength is not supported")
		}
		if f.kind != 's' {
			return nil, schemaError(path+"/format", "format must be a string")
		}
		e, ok := formats()[f.str]
		if !ok {
			return nil, schemaError(path+"/format", "format %q is not supported (date, time, date-time, email, uuid are)", f.str)
		}
		return seq(quote, e, quote), nil
	}
	if p := s.get("pattern"); p != nil {
		if hasMin || hasMax {
			return nil, schemaError(path, "pattern with minLength or maxLength is not supported")
		}
		if p.kind != 's' {
			return nil, schemaError(path+"/pattern", "pattern must be a string")
		}
		e, err := patternExpr(p.str)
		if err != nil {
			return nil, schemaError(path+"/pattern", "%v", err)
		}
		return seq(quote, e, quote), nil
	}
	return seq(quote, repeat(schemaChar(), minLen, maxLen), quote), nil
}

// formats are the string formats supported, each a subset of what its
// RFC allows that validators accept: dates with days valid in every year
// (no February 29), times with an offset and no leap second, plain
// dot-atom addresses, UUIDs in hex of either case.
func formats() map[string]*expr {
	d := func(lo, hi byte) *expr { return bytesExpr(lo, hi) }
	two := func(s ...string) *expr {
		var alts []*expr
		for _, x := range s {
			alts = append(alts, literal(x))
		}
		return alt(alts...)
	}
	day := func(last byte) *expr { // 01..28, 29, 30, 31 as allowed
		alts := []*expr{seq(literal("0"), d('1', '9')), seq(literal("1"), d('0', '9')), seq(literal("2"), d('0', '8'))}
		if last >= '0' {
			alts = append(alts, literal("30"))
		}
		if last >= '1' {
			alts = append(alts, literal("31"))
		}
		return alt(alts...)
	}
	monthDay := alt(
		seq(two("01", "03", "05", "07", "08", "10", "12"), literal("-"), day('1')),
		seq(two("04", "06", "09", "11"), literal("-"), day('0')),
		seq(literal("02-"), day(' ')),
	)
	date := seq(repeat(d('0', '9'), 4, 4), literal("-"), monthDay)
	hour := alt(seq(d('0', '1'), d('0', '9')), seq(literal("2"), d('0', '3')))
	minute := seq(d('0', '5'), d('0', '9'))
	sign := bytesExpr('+', '+')
	sign.set.add('-', '-')
	time := seq(hour, literal(":"), minute, literal(":"), minute, opt(seq(literal("."), repeat(d('0', '9'), 1, 9))),
		alt(literal("Z"), seq(sign, hour, literal(":"), minute)))
	alnum := bytesExpr('a', 'z')
	alnum.set.add('A', 'Z')
	alnum.set.add('0', '9')
	label := repeat(alnum, 1, 20)
	email := seq(label, repeat(seq(literal("."), label), 0, 2), literal("@"), label, repeat(seq(literal("."), label), 1, 3))
	hex := bytesExpr('0', '9')
	hex.set.add('a', 'f')
	hex.set.add('A', 'F')
	h := func(n int) *expr { return repeat(hex, n, n) }
	uuid := seq(h(8), literal("-"), h(4), literal("-"), h(4), literal("-"), h(4), literal("-"), h(12))
	return map[string]*expr{"date": date, "time": time, "date-time": seq(date, literal("T"), time), "email": email, "uuid": uuid}
}

// rule compiles a value schema into a rule (so that arrays and objects
// call it once instead of copying it).
func (sc *schemaCompiler) rule(s *jsonValue, path, prefix string) (*expr, error) {
	e, err := sc.compile(s, path)
	if err != nil {
		return nil, err
	}
	if e.kind == exRef {
		return e, nil
	}
	// Equal schemas share one rule, and so the masks computed for it.
	var key strings.Builder
	sc.g.write(&key, e, false)
	if name, ok := sc.shared[key.String()]; ok {
		return sc.g.ref(name), nil
	}
	name := sc.newRule(prefix)
	sc.g.define(name, e)
	sc.shared[key.String()] = name
	return sc.g.ref(name), nil
}

func (sc *schemaCompiler) array(s *jsonValue, path string) (*expr, error) {
	minN, _, err := size(s, "minItems", path, maxSchemaItems)
	if err != nil {
		return nil, err
	}
	maxN, hasMax, err := size(s, "maxItems", path, maxSchemaItems)
	if err != nil {
		return nil, err
	}
	if hasMax && maxN < minN {
		return nil, schemaError(path, "minItems is above maxItems")
	}
	item := sc.anyValue()
	if it := s.get("items"); it != nil {
		if it.kind == 'a' {
			return nil, schemaError(path+"/items", "items as an array (tuples) is not supported")
		}
		if item, err = sc.rule(it, path+"/items", "item"); err != nil {
			return nil, err
		}
	}
	more := seq(sc.ws(), literal(","), sc.ws(), item)
	hi := -1
	if hasMax {
		hi = maxN - 1
	}
	if hasMax && maxN == 0 {
		return seq(literal("["), sc.ws(), literal("]")), nil
	}
	list := seq(item, repeat(more, max(minN-1, 0), hi))
	if minN == 0 {
		return seq(literal("["), sc.ws(), opt(seq(list, sc.ws())), literal("]")), nil
	}
	return seq(literal("["), sc.ws(), list, sc.ws(), literal("]")), nil
}

func (sc *schemaCompiler) object(s *jsonValue, path string) (*expr, error) {
	props := s.get("properties")
	if props != nil && props.kind != 'o' {
		return nil, schemaError(path+"/properties", "properties must be an object")
	}
	var required []string
	if r := s.get("required"); r != nil {
		if r.kind != 'a' {
			return nil, schemaError(path+"/required", "required must be an array of names")
		}
		for _, it := range r.items {
			if it.kind != 's' {
				return nil, schemaError(path+"/required", "required must be an array of names")
			}
			if props == nil || props.get(it.str) == nil {
				return nil, schemaError(path+"/required", "required property %q is not among the properties", it.str)
			}
			required = append(required, it.str)
		}
	}
	open := seq(literal("{"), sc.ws())
	closing := literal("}")
	additional := s.get("additionalProperties")
	if additional != nil && additional.kind == 'o' {
		if props != nil && len(props.members) > 0 {
			return nil, schemaError(path+"/additionalProperties", "additionalProperties as a schema beside properties is not supported")
		}
		value, err := sc.rule(additional, path+"/additionalProperties", "value")
		if err != nil {
			return nil, err
		}
		key := seq(literal(`"`), repeat(schemaChar(), 0, -1), literal(`"`))
		member := seq(key, sc.ws(), literal(":"), sc.ws(), value)
		list := seq(member, repeat(seq(sc.ws(), literal(","), sc.ws(), member), 0, -1))
		return seq(open, opt(seq(list, sc.ws())), closing), nil
	}
	if props == nil || len(props.members) == 0 {
		if additional != nil && additional.kind == 'b' && !additional.boolean {
			return seq(open, closing), nil
		}
		sc.generic = true
		return sc.g.ref("object"), nil
	}
	// Members in the schema's order; the required ones always, each
	// optional one or not; a comma before every member but the first.
	var members []*expr
	var optional []bool
	for _, m := range props.members {
		value, err := sc.rule(m.value, path+"/properties/"+m.key, "prop")
		if err != nil {
			return nil, err
		}
		var key bytes.Buffer
		encodeString(&key, m.key)
		members = append(members, seq(literal(key.String()), sc.ws(), literal(":"), sc.ws(), value))
		optional = append(optional, !slices.Contains(required, m.key))
	}
	comma := func(i int) *expr {
		e := seq(sc.ws(), literal(","), sc.ws(), members[i])
		if optional[i] {
			return opt(e)
		}
		return e
	}
	// rest(i): members i.. after at least one written.
	rest := func(i int) *expr {
		var parts []*expr
		for j := i; j < len(members); j++ {
			parts = append(parts, comma(j))
		}
		return seqOrEmpty(parts)
	}
	// The first member written is member j: all before it optional.
	var firsts []*expr
	allOptional := true
	for j := range members {
		firsts = append(firsts, seq(members[j], rest(j+1)))
		if !optional[j] {
			allOptional = false
			break
		}
	}
	body := seq(alt(firsts...), sc.ws())
	if allOptional {
		return seq(open, opt(body), closing), nil
	}
	return seq(open, body, closing), nil
}
