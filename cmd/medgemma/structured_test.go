package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/grammar"
	"github.com/medgemma/medgemma/internal/testenv"
)

// TestRunStructured: run --json-schema, --format json and --grammar answer
// in their language with the tiny model (whose free answers are
// gibberish); what cannot be honoured is a usage error naming it.
func TestRunStructured(t *testing.T) {
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	dir := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma-text")
	tmp := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	schema := `{"type":"object","properties":{"answer":{"enum":["yes","no"]},"confidence":{"type":"integer","minimum":0,"maximum":100}},"required":["answer","confidence"],"additionalProperties":false}`
	gbnf := `root ::= "Answer: " ("yes" | "no")`
	for _, c := range []struct {
		flags []string
		check func(out string) bool
	}{
		{[]string{"--json-schema", write("s.json", schema)}, func(out string) bool {
			var v struct {
				Answer     string `json:"answer"`
				Confidence *int   `json:"confidence"`
			}
			err := json.Unmarshal([]byte(out), &v)
			return err == nil && (v.Answer == "yes" || v.Answer == "no") && v.Confidence != nil && *v.Confidence <= 100
		}},
		{[]string{"--format", "json", "--max-tokens", "30"}, func(out string) bool {
			c, _ := grammar.JSONObject().Compile()
			return c.NewMatcher().Advance([]byte(out)) && strings.HasPrefix(out, "{")
		}},
		{[]string{"--grammar", write("g.gbnf", gbnf)}, func(out string) bool { return out == "Answer: yes" || out == "Answer: no" }},
	} {
		args := append([]string{"run", "-m", dir, "--tokenizer", tok, "--temperature", "0", "--quiet"}, c.flags...)
		out, errs, code := runCLI(t, "", append(args, "Is it pneumonia?")...)
		out = strings.TrimSuffix(out, "\n")
		if code != 0 || !c.check(out) {
			t.Errorf("%v: exit %d, %q (stderr %q)", c.flags, code, out, errs)
		}
	}
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--format", "xml"}, `--format "xml": want json`},
		{[]string{"--format", "json", "--grammar", write("g2.gbnf", gbnf)}, "exclude each other"},
		{[]string{"--json-schema", write("bad.json", `{"type":"string","format":"uri"}`)}, `--json-schema: invalid grammar: schema at /format: format "uri" is not supported`},
		{[]string{"--grammar", write("bad.gbnf", `root ::= x`)}, `--grammar: invalid grammar: rule "x" is used but not defined`},
		{[]string{"--json-schema", filepath.Join(tmp, "missing.json")}, "--json-schema: open"},
	} {
		args := append([]string{"run", "-m", "/nonexistent/model"}, c.flags...)
		_, errs, code := runCLI(t, "", append(args, "x")...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.flags, code, errs, c.want)
		}
	}
}
