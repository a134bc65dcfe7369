package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/medgemma/medgemma/grammar"
	"github.com/medgemma/medgemma/internal/schemagen"
	"github.com/medgemma/medgemma/internal/testenv"
)

// medsSchema asks for a medication list: an array of objects with an
// enum, a bounded integer, an optional note.
const medsSchema = `{"type":"object","properties":{"medications":{"type":"array","minItems":1,"maxItems":3,"items":{"type":"object","properties":{"name":{"type":"string","maxLength":20},"route":{"enum":["oral","iv","im"]},"dose_mg":{"type":"integer","minimum":1,"maximum":1000},"note":{"type":"string","maxLength":10}},"required":["name","route","dose_mg"],"additionalProperties":false}},"allergies":{"type":"boolean"}},"required":["medications","allergies"],"additionalProperties":false}`

// checkAnswer: an answer that ended with stop parses and the schema
// validates it (sch nil: any JSON); one cut by the length is a prefix of
// the grammar's language.
func checkAnswer(t *testing.T, c *grammar.Compiled, sch *jsonschema.Schema, content, finish string) {
	t.Helper()
	m := c.NewMatcher()
	if !m.Advance([]byte(content)) {
		t.Fatalf("answer %q is outside the grammar", content)
	}
	switch finish {
	case "length":
	case "stop":
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(content))
		if err != nil {
			t.Fatalf("answer %q (stop) does not parse: %v", content, err)
		}
		if sch != nil {
			if err := sch.Validate(inst); err != nil {
				t.Fatalf("answer %q does not validate: %v", content, err)
			}
		}
	default:
		t.Fatalf("finish reason %q", finish)
	}
}

func compileSchema(t *testing.T, schema string) (*grammar.Compiled, *jsonschema.Schema) {
	t.Helper()
	g, err := grammar.FromJSONSchema([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Compile()
	if err != nil {
		t.Fatal(err)
	}
	sch, err := schemagen.Validator(schema)
	if err != nil {
		t.Fatal(err)
	}
	return c, sch
}

// TestStructuredOutput: through the chat and completions APIs, with the
// tiny model (whose free answers are gibberish), response_format
// json_schema, json_object and a GBNF grammar constrain every answer:
// greedy and sampled, plain and streamed, several choices; each answer
// that ends with stop validates, each cut by max_tokens says length and
// is a prefix of a valid one.
func TestStructuredOutput(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma-text", Options{}, 8)
	schemaC, sch := compileSchema(t, medsSchema)
	objC, err := grammar.JSONObject().Compile()
	if err != nil {
		t.Fatal(err)
	}
	const gbnf = `root ::= "Answer: " ("yes" | "no") ", confidence " [0-9] "0%"`
	gg, err := grammar.ParseGBNF(gbnf)
	if err != nil {
		t.Fatal(err)
	}
	gC, err := gg.Compile()
	if err != nil {
		t.Fatal(err)
	}
	formats := []struct {
		name  string
		extra map[string]any
		c     *grammar.Compiled
		sch   *jsonschema.Schema
	}{
		{"json_schema", map[string]any{"response_format": map[string]any{"type": "json_schema",
			"json_schema": map[string]any{"name": "meds", "strict": true, "schema": json.RawMessage(medsSchema)}}}, schemaC, sch},
		{"json_object", map[string]any{"response_format": map[string]any{"type": "json_object"}}, objC, nil},
	}
	stops := map[string]int{}
	temps := []float64{0, 1, 1}
	if testenv.Race || testenv.Purego {
		temps = temps[:1] // scripts/test.sh runs this test once more, plain, with all
	}
	if testenv.Race || testenv.Purego {
		formats = formats[:1]
	}
	for _, f := range formats {
		for i, temp := range temps {
			for _, stream := range []bool{false, true} {
				body := map[string]any{"model": "medgemma-tiny", "messages": userText("List the medications."), "temperature": temp,
					"seed": 10 + i, "max_tokens": 200, "n": 2, "stream": stream}
				for k, v := range f.extra {
					body[k] = v
				}
				status, data, _ := ts.do(t, "POST", "/v1/chat/completions", body)
				if status != http.StatusOK {
					t.Fatalf("%s: %d %s", f.name, status, data)
				}
				contents, finishes := make([]string, 2), make([]string, 2)
				if stream {
					evs, done := events(t, data)
					if !done {
						t.Fatalf("%s: the stream did not end with [DONE]", f.name)
					}
					for _, ev := range evs {
						for _, ch := range ev.Choices {
							if ch.Delta.Content != nil {
								contents[ch.Index] += *ch.Delta.Content
							}
							if ch.FinishReason != nil {
								finishes[ch.Index] = *ch.FinishReason
							}
						}
					}
				} else {
					r := parse(t, data)
					for _, ch := range r.Choices {
						contents[ch.Index], finishes[ch.Index] = ch.Message.Content, *ch.FinishReason
					}
				}
				for k := range 2 {
					checkAnswer(t, f.c, f.sch, contents[k], finishes[k])
					stops[f.name+" "+finishes[k]]++
				}
			}
		}
	}
	if stops["json_schema stop"] == 0 {
		t.Fatalf("no schema answer ended: %v", stops)
	}
	// A GBNF grammar, through completions too.
	for _, path := range []string{"/v1/chat/completions", "/v1/completions"} {
		body := map[string]any{"model": "medgemma-tiny", "temperature": 1, "seed": 3, "max_tokens": 50, "grammar": gbnf}
		if path == "/v1/completions" {
			body["prompt"] = "Is it pneumonia?"
		} else {
			body["messages"] = userText("Is it pneumonia?")
		}
		status, data, _ := ts.do(t, "POST", path, body)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, status, data)
		}
		var r struct {
			Choices []struct {
				Text         string                   `json:"text"`
				Message      struct{ Content string } `json:"message"`
				FinishReason string                   `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatal(err)
		}
		text := r.Choices[0].Text + r.Choices[0].Message.Content
		if r.Choices[0].FinishReason != "stop" || !gC.Match([]byte(text)) {
			t.Fatalf("%s: %q (%s) is not in the grammar", path, text, r.Choices[0].FinishReason)
		}
	}
	t.Log(stops)
}

// TestStructuredOutputErrors: what cannot be honoured is a 400 that names
// the field and what is wrong, before any generation.
func TestStructuredOutputErrors(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma-text", Options{}, 8)
	schema := func(s string) map[string]any {
		return map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "x", "schema": json.RawMessage(s)}}
	}
	for _, c := range []struct {
		extra      map[string]any
		param, msg string
	}{
		{map[string]any{"response_format": schema(`{"type":"object","properties":{"a":{"type":"string","format":"uri"}}}`)}, "response_format", `schema at /properties/a/format: format "uri" is not supported`},
		{map[string]any{"response_format": schema(`{"type":"array","uniqueItems":true}`)}, "response_format", `keyword "uniqueItems" is not supported`},
		{map[string]any{"response_format": map[string]any{"type": "json_schema"}}, "response_format", "needs json_schema.schema"},
		{map[string]any{"response_format": map[string]any{"type": "xml"}}, "response_format", `type "xml" is not supported`},
		{map[string]any{"grammar": `root ::= "a" | b`}, "grammar", `rule "b" is used but not defined`},
		{map[string]any{"grammar": `root ::= "a"`, "response_format": map[string]any{"type": "json_object"}}, "grammar", "cannot be combined"},
		{map[string]any{"response_format": "json"}, "response_format", "want an object"},
	} {
		status, data, _ := ts.do(t, "POST", "/v1/chat/completions", greedy(userText("hi"), c.extra))
		r := parse(t, data)
		if status != http.StatusBadRequest || r.Error == nil || r.Error.Param == nil || *r.Error.Param != c.param || !strings.Contains(r.Error.Message, c.msg) {
			t.Errorf("%v: %d %s; want 400 on %s saying %q", c.extra, status, data, c.param, c.msg)
		}
	}
	// The same schema twice is compiled once.
	body := greedy(userText("hi"), map[string]any{"response_format": schema(medsSchema)})
	for range 2 {
		if status, data, _ := ts.do(t, "POST", "/v1/chat/completions", body); status != http.StatusOK {
			t.Fatalf("%d %s", status, data)
		}
	}
	if n := len(ts.srv.grammars.m); n != 1 {
		t.Fatalf("%d compiled grammars cached, want 1", n)
	}
}
