package grammar

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/medgemma/medgemma/internal/schemagen"
)

// radiologySchema is a typical clinical schema: a report's findings as
// fields, nested arrays, enums, bounds and formats.
const radiologySchema = `{
  "type": "object",
  "properties": {
    "study_date": {"type": "string", "format": "date"},
    "modality": {"enum": ["CR", "CT", "MR", "US"]},
    "body_part": {"type": "string", "maxLength": 40},
    "findings": {
      "type": "array", "minItems": 1, "maxItems": 8,
      "items": {
        "type": "object",
        "properties": {
          "location": {"type": "string"},
          "description": {"type": "string"},
          "severity": {"type": "integer", "minimum": 0, "maximum": 5},
          "measurements_mm": {"type": "array", "items": {"type": "number", "minimum": 0}, "maxItems": 3}
        },
        "required": ["location", "description", "severity"],
        "additionalProperties": false
      }
    },
    "impression": {"type": "string", "minLength": 1},
    "urgent": {"type": "boolean"},
    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    "follow_up": {"anyOf": [{"type": "null"}, {"type": "string", "pattern": "^(CT|MR|US) in [0-9]{1,2} (days|weeks|months)$"}]},
    "icd10": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z][0-9]{2}(\\.[0-9]{1,2})?$"}},
    "reader_id": {"type": "string", "format": "uuid"}
  },
  "required": ["study_date", "modality", "findings", "impression", "urgent", "confidence", "follow_up", "icd10", "reader_id"],
  "additionalProperties": false
}`

// validator is schemagen.Validator, failing the test on an error.
func validator(t testing.TB, schema string) *jsonschema.Schema {
	t.Helper()
	sch, err := schemagen.Validator(schema)
	if err != nil {
		t.Fatalf("%s: %v", schema, err)
	}
	return sch
}

func validates(sch *jsonschema.Schema, doc []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// sample draws a random document from the grammar: at each step a random
// byte among those allowed (the quote and closing brackets favoured, so
// that documents end), stopping at random once the match may end. false:
// too long (or stuck, which the caller reports).
func sample(c *Compiled, rng *rand.Rand, maxLen int) ([]byte, bool) {
	m := c.NewMatcher()
	var out []byte
	var allowed []byte
	for len(out) < maxLen {
		if m.Done() && (!m.More() || rng.IntN(3) == 0) {
			return out, true
		}
		allowed = allowed[:0]
		for b := range 256 {
			if set, _ := m.k.step(nil, m.cur, byte(b)); len(set) > 0 {
				allowed = append(allowed, byte(b))
			}
		}
		if len(allowed) == 0 {
			return out, false
		}
		b := allowed[rng.IntN(len(allowed))]
		if rng.IntN(3) == 0 {
			for _, f := range []byte(`"}],`) {
				if bytes.IndexByte(allowed, f) >= 0 {
					b = f
					break
				}
			}
		}
		if !m.Advance([]byte{b}) {
			panic("an allowed byte refused")
		}
		out = append(out, b)
	}
	return nil, false
}

func TestSchemaExamples(t *testing.T) {
	for _, c := range []struct {
		schema    string
		match     []string
		dontMatch []string
	}{
		{radiologySchema, []string{`{"study_date":"2024-02-28","modality":"CT","findings":[{"location":"RLL","description":"opacity","severity":3,"measurements_mm":[12.5]}],"impression":"Pneumonia.","urgent":false,"confidence":0.85,"follow_up":"CT in 6 weeks","icd10":["J18.9"],"reader_id":"123e4567-e89b-12d3-a456-426614174000"}`},
			[]string{`{"study_date":"2024-02-30","modality":"CT"}`, `{"modality":"CT","study_date":"2024-02-28"}`}},
		{`{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["b"]}`,
			[]string{`{"b":"x"}`, `{"a":1,"b":"x"}`, `{"b":"x","c":true}`, `{"a":-5,"b":"","c":false}`, "{ \"b\" :\n  \"x\" }"},
			[]string{`{}`, `{"a":1}`, `{"b":"x","a":1}`, `{"b":"x",}`, `{,"b":"x"}`, `{"b":"x","d":1}`}},
		{`{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}}}`,
			[]string{`{}`, `{"a":1}`, `{"b":2}`, `{"a":1,"b":2}`}, []string{`{"b":2,"a":1}`, `{,}`}},
		{`{"type":"array","items":{"type":"integer","minimum":-3,"exclusiveMaximum":10},"minItems":2,"maxItems":3}`,
			[]string{`[1,2]`, `[-3, 9, 0]`}, []string{`[1]`, `[1,2,3,4]`, `[10,1]`, `[-4,1]`}},
		{`{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/node"}`,
			[]string{`{"v":1}`, `{"v":1,"kids":[{"v":2,"kids":[]},{"v":3}]}`}, []string{`{"kids":[]}`}},
		{`{"type":["string","null"],"maxLength":3}`, []string{`null`, `"abc"`, `"\n\"é"`}, []string{`"abcd"`, `1`}},
		{`{"enum":["a",1,null,{"k":[true]}]}`, []string{`"a"`, `1`, `null`, `{"k":[true]}`}, []string{`"b"`, `{"k":[false]}`}},
		{`{"const":"x\"y"}`, []string{`"x\"y"`}, []string{`"xy"`}},
		{`{"type":"string","pattern":"a+"}`, []string{`"a"`, `"xay"`, `"\"a\\"`}, []string{`""`, `"b"`}},
		{`{"type":"object","additionalProperties":{"type":"number"}}`, []string{`{}`, `{"x":1,"y":2.5e3}`}, []string{`{"x":"1"}`}},
		{`{"type":"object"}`, []string{`{}`, `{"x":[1,{"y":null}]}`}, []string{`[]`}},
		{`{}`, []string{`1`, `"s"`, `[{}]`}, []string{``, `x`}},
		{`{"type":"number","minimum":0,"maximum":1}`, []string{`0`, `1`, `0.5`, `1.000`}, []string{`1.01`, `-0.1`, `2`, `1e0`}},
		{`{"type":"string","format":"date-time"}`, []string{`"2024-01-31T23:59:59Z"`, `"1999-12-01T00:00:00.123+05:30"`}, []string{`"2024-01-31T24:00:00Z"`, `"2024-01-31 10:00:00Z"`}},
		{`{"type":"string","format":"email"}`, []string{`"a.b@example.com"`}, []string{`"a@b"`, `"@x.com"`}},
	} {
		g, err := FromJSONSchema([]byte(c.schema))
		if err != nil {
			t.Fatalf("%s: %v", c.schema, err)
		}
		comp, err := g.Compile()
		if err != nil {
			t.Fatalf("%s: %v", c.schema, err)
		}
		sch := validator(t, c.schema)
		for _, s := range c.match {
			if !comp.Match([]byte(s)) {
				t.Errorf("%s: %s not matched", c.schema, s)
			}
			if err := validates(sch, []byte(s)); err != nil {
				t.Errorf("%s: test document %s is not valid: %v", c.schema, s, err)
			}
		}
		for _, s := range c.dontMatch {
			if comp.Match([]byte(s)) {
				t.Errorf("%s: %s matched", c.schema, s)
			}
		}
	}
}

func TestSchemaErrors(t *testing.T) {
	for _, c := range []struct{ schema, want string }{
		{`{"type":"object","properties":{"a":{"type":"string","uniqueItems":true}}}`, `schema at /properties/a: keyword "uniqueItems" is not supported`},
		{`{"oneOf":[{"type":"string"}]}`, `keyword "oneOf" is not supported`},
		{`{"allOf":[]}`, `keyword "allOf" is not supported`},
		{`{"type":"strin"}`, `unknown type "strin"`},
		{`{"type":"string","format":"uri"}`, `format "uri" is not supported`},
		{`{"type":"string","pattern":"(?=a)"}`, "look-arounds"},
		{`{"type":"string","pattern":"(a)\\1"}`, "backreferences"},
		{`{"type":"string","maxLength":100000}`, "maxLength 100000 is over"},
		{`{"type":"integer","minimum":5,"maximum":4.5}`, "no integer lies between"},
		{`{"type":"number","exclusiveMinimum":0}`, "exclusiveMinimum is supported for integers only"},
		{`{"$ref":"#/$defs/x"}`, `names no definition`},
		{`{"$ref":"other.json"}`, `$ref "other.json" is not supported`},
		{`{"type":"object","required":["a"]}`, `required property "a" is not among the properties`},
		{`false`, "accepts nothing"},
		{`{"type":"string"`, "not valid JSON"},
		{`{"a":1,"a":2}`, "twice"},
		{strings.Repeat(`{"items":`, 70) + "{}" + strings.Repeat("}", 70), "nested more than"},
	} {
		_, err := FromJSONSchema([]byte(c.schema))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.schema, err, c.want)
		}
	}
}

// TestRandomSchemas: for random schemas covering every supported keyword,
// every document the grammar completes (drawn at random from it) is valid
// JSON that the schema validates (santhosh-tekuri/jsonschema, formats
// asserted), and the grammar never leads where it cannot end.
func TestRandomSchemas(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	docs := 0
	for i := range 300 {
		schema := schemagen.Random(rng)
		g, err := FromJSONSchema([]byte(schema))
		if err != nil {
			t.Fatalf("schema %d %s: %v", i, schema, err)
		}
		c, err := g.Compile()
		if err != nil {
			t.Fatalf("schema %d %s: %v", i, schema, err)
		}
		sch := validator(t, schema)
		for range 6 {
			doc, ok := sample(c, rng, 4000)
			if !ok {
				if doc != nil {
					t.Fatalf("schema %s: stuck after %q", schema, doc)
				}
				continue
			}
			docs++
			if !json.Valid(doc) {
				t.Fatalf("schema %s: %q is not JSON", schema, doc)
			}
			if err := validates(sch, doc); err != nil {
				t.Fatalf("schema %s: %s does not validate: %v", schema, doc, err)
			}
		}
	}
	if docs < 1000 {
		t.Fatalf("only %d documents drawn", docs)
	}
	t.Logf("%d documents validated", docs)
}
