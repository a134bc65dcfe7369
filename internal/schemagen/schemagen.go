// Package schemagen draws random JSON Schemas over every keyword package
// grammar supports, for property tests (grammar's, and the end-to-end ones
// through a model).
package schemagen

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema writes a random schema's members (without braces), covering
// every keyword package grammar supports; depth bounds nesting. Its
// $ref names NodeDef's definition.
func Schema(rng *rand.Rand, depth int) string {
	leaf := depth >= 3
	k := rng.IntN(14)
	if leaf {
		k = 2 + rng.IntN(8)
	}
	switch k {
	case 0: // object
		names := []string{"id", "name", "dose_mg", "flag", "notes", "date", "items", "x"}
		n := rng.IntN(5)
		var props, req []string
		for i := range n {
			props = append(props, fmt.Sprintf("%q:{%s}", names[i], Schema(rng, depth+1)))
			if rng.IntN(2) == 0 {
				req = append(req, fmt.Sprintf("%q", names[i]))
			}
		}
		s := fmt.Sprintf(`"type":"object","properties":{%s},"required":[%s]`, strings.Join(props, ","), strings.Join(req, ","))
		if rng.IntN(4) > 0 {
			s += `,"additionalProperties":false`
		}
		return s
	case 1: // array
		lo := rng.IntN(3)
		s := fmt.Sprintf(`"type":"array","items":{%s},"minItems":%d`, Schema(rng, depth+1), lo)
		if rng.IntN(2) == 0 {
			s += fmt.Sprintf(`,"maxItems":%d`, lo+rng.IntN(3))
		}
		return s
	case 2: // string
		lo := rng.IntN(4)
		s := fmt.Sprintf(`"type":"string","minLength":%d`, lo)
		if rng.IntN(2) == 0 {
			s += fmt.Sprintf(`,"maxLength":%d`, lo+rng.IntN(6))
		}
		return s
	case 3:
		patterns := []string{`^[A-Z]{2}-\\d{3}$`, `^(yes|no)$`, `[a-z]+`, `^\\w+@\\w+\\.com$`, `^.{0,5}$`, `^[^\"\\\\]*x$`, `^\\s?[^a-c]+$`, `^(a|b\\.c)*$`, `^[\\u00e0-\\u00ff]{1,3}$`}
		return fmt.Sprintf(`"type":"string","pattern":%q`, patterns[rng.IntN(len(patterns))])
	case 4:
		formats := []string{"date", "time", "date-time", "email", "uuid"}
		return fmt.Sprintf(`"type":"string","format":%q`, formats[rng.IntN(len(formats))])
	case 5: // number
		bounds := []string{"-10.5", "0", "0.25", "1", "100", "3.14159", "-0.001", "1e2"}
		a, b := bounds[rng.IntN(len(bounds))], bounds[rng.IntN(len(bounds))]
		var x, y float64
		fmt.Sscan(a, &x)
		fmt.Sscan(b, &y)
		if x > y {
			a, b = b, a
		}
		switch rng.IntN(4) {
		case 0:
			return `"type":"number"`
		case 1:
			return fmt.Sprintf(`"type":"number","minimum":%s`, a)
		case 2:
			return fmt.Sprintf(`"type":"number","maximum":%s`, b)
		}
		return fmt.Sprintf(`"type":"number","minimum":%s,"maximum":%s`, a, b)
	case 6: // integer
		a := rng.IntN(200) - 100
		b := a + rng.IntN(300)
		switch rng.IntN(5) {
		case 0:
			return `"type":"integer"`
		case 1:
			return fmt.Sprintf(`"type":"integer","minimum":%d`, a)
		case 2:
			return fmt.Sprintf(`"type":"integer","exclusiveMaximum":%d`, b)
		case 3:
			return fmt.Sprintf(`"type":"integer","exclusiveMinimum":%d,"maximum":%d`, a-1, b)
		}
		return fmt.Sprintf(`"type":"integer","minimum":%d,"maximum":%d`, a, b)
	case 7:
		return []string{`"type":"boolean"`, `"type":"null"`, `"type":["integer","null"]`}[rng.IntN(3)]
	case 8:
		return `"enum":["mild","moderate","severe",1,null,{"k":[true]}]`
	case 9:
		return []string{`"const":"fixed \"value\""`, `"const":42`, `"description":"anything"`}[rng.IntN(3)]
	case 10: // anyOf
		return fmt.Sprintf(`"anyOf":[{%s},{%s}]`, Schema(rng, depth+1), Schema(rng, depth+1))
	case 11:
		return `"$ref":"#/$defs/node"`
	case 12:
		return fmt.Sprintf(`"type":"object","additionalProperties":{%s}`, Schema(rng, depth+1))
	}
	return fmt.Sprintf(`"type":["string","null"],"maxLength":%d`, rng.IntN(4))
}

// NodeDef is a recursive definition (a tree of integers) for Schema's
// $ref, as members of the root schema.
const NodeDef = `"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v"],"additionalProperties":false}}`

// Random is a whole random schema: NodeDef's definitions and Schema's
// members.
func Random(rng *rand.Rand) string { return "{" + NodeDef + "," + Schema(rng, 0) + "}" }

// Validator compiles schema with santhosh-tekuri/jsonschema (draft
// 2020-12, formats asserted): the independent judge of what the grammars
// produce.
func Validator(schema string) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("schema.json")
}
