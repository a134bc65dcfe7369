package server

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/medgemma/medgemma/grammar"
)

// Structured output: a request's response_format (OpenAI's json_object
// and json_schema) or grammar (a GBNF grammar, as llama.cpp's server takes
// it) becomes a compiled grammar that constrains the answer. Compiled
// grammars are cached by their source, so that a client sending the same
// schema with every request compiles it once and its token masks, computed
// on first use, serve every later request.

// responseFormat is OpenAI's response_format.
type responseFormat struct {
	Type       string            `json:"type"`
	JSONSchema *jsonSchemaFormat `json:"json_schema"`
}

type jsonSchemaFormat struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	Strict      *bool           `json:"strict"`
}

// maxGrammars bounds the cache of compiled grammars (each keeps at most
// grammar.MaxMaskCache bytes of masks).
const maxGrammars = 32

// grammarCache holds the latest compiled grammars by source.
type grammarCache struct {
	mu    sync.Mutex
	m     map[string]*grammar.Compiled
	order []string // oldest first
}

func (c *grammarCache) get(key string, build func() (*grammar.Grammar, error)) (*grammar.Compiled, error) {
	c.mu.Lock()
	if g, ok := c.m[key]; ok {
		c.mu.Unlock()
		return g, nil
	}
	c.mu.Unlock()
	g, err := build()
	if err != nil {
		return nil, err
	}
	compiled, err := g.Compile()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*grammar.Compiled{}
	}
	if _, ok := c.m[key]; !ok {
		if len(c.order) >= maxGrammars {
			delete(c.m, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, key)
		c.m[key] = compiled
	}
	return c.m[key], nil
}

// constraint is the grammar a request asks for, or nil.
func (s *Server) constraint(rf *responseFormat, gbnf *string) (*grammar.Compiled, *apiError) {
	if rf != nil && rf.Type != "text" && gbnf != nil {
		return nil, invalid("grammar", "grammar and a response_format other than text cannot be combined")
	}
	if gbnf != nil {
		g, err := s.grammars.get("gbnf\x00"+*gbnf, func() (*grammar.Grammar, error) { return grammar.ParseGBNF(*gbnf) })
		if err != nil {
			return nil, invalid("grammar", "%v", err)
		}
		return g, nil
	}
	if rf == nil {
		return nil, nil
	}
	switch rf.Type {
	case "text", "":
		return nil, nil
	case "json_object":
		g, err := s.grammars.get("json_object", func() (*grammar.Grammar, error) { return grammar.JSONObject(), nil })
		if err != nil {
			return nil, invalid("response_format", "%v", err)
		}
		return g, nil
	case "json_schema":
		if rf.JSONSchema == nil || len(bytes.TrimSpace(rf.JSONSchema.Schema)) == 0 {
			return nil, invalid("response_format", "response_format json_schema needs json_schema.schema")
		}
		schema := rf.JSONSchema.Schema
		g, err := s.grammars.get("schema\x00"+string(schema), func() (*grammar.Grammar, error) { return grammar.FromJSONSchema(schema) })
		if err != nil {
			return nil, invalid("response_format", "%v", err)
		}
		return g, nil
	}
	return nil, invalid("response_format", "response_format type %q is not supported (text, json_object, json_schema)", rf.Type)
}
