package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
)

// The request bodies, as OpenAI defines them (response_format included),
// with the extensions vLLM and llama.cpp accept (top_k, min_p,
// repetition_penalty, return_tokens_as_token_ids, ignore_eos, grammar) and
// think (reasoning_content).
// Fields the server does not know are ignored; a known field of the wrong
// type is a 400 naming it.

// samplingRequest holds the fields chat and completions share.
type samplingRequest struct {
	Model                  string         `json:"model"`
	MaxTokens              *int           `json:"max_tokens"`
	Temperature            *float64       `json:"temperature"`
	TopP                   *float64       `json:"top_p"`
	Seed                   *int64         `json:"seed"`
	Stop                   stopList       `json:"stop"`
	FrequencyPenalty       *float64       `json:"frequency_penalty"`
	PresencePenalty        *float64       `json:"presence_penalty"`
	Stream                 bool           `json:"stream"`
	StreamOptions          *streamOptions `json:"stream_options"`
	N                      *int           `json:"n"`
	TopK                   *int           `json:"top_k"`
	MinP                   *float64       `json:"min_p"`
	RepetitionPenalty      *float64       `json:"repetition_penalty"`
	ReturnTokensAsTokenIDs bool           `json:"return_tokens_as_token_ids"`
	// IgnoreEOS generates max_tokens whatever the model says (vLLM's and
	// llama.cpp's extension, for benchmarks): the end-of-turn and
	// end-of-text tokens are generated as any other.
	IgnoreEOS bool `json:"ignore_eos"`
	// ResponseFormat (OpenAI's) and Grammar (llama.cpp's GBNF) constrain
	// the answer (structured.go).
	ResponseFormat *responseFormat `json:"response_format"`
	Grammar        *string         `json:"grammar"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatRequest is POST /v1/chat/completions.
type chatRequest struct {
	samplingRequest
	Messages            []chatMessage `json:"messages"`
	MaxCompletionTokens *int          `json:"max_completion_tokens"`
	Logprobs            *bool         `json:"logprobs"`
	TopLogprobs         *int          `json:"top_logprobs"`
	Think               *bool         `json:"think"`
}

// chatMessage is one message: OpenAI's roles (developer is a system
// message), content a string or parts (text, image_url).
type chatMessage struct {
	chat.Message
}

func (m *chatMessage) UnmarshalJSON(data []byte) error {
	if err := json.Unmarshal(data, &m.Message); err != nil {
		return err
	}
	switch m.Role {
	case "developer":
		m.Role = chat.RoleSystem
	case chat.RoleSystem, chat.RoleUser, chat.RoleAssistant:
	default:
		return fmt.Errorf("role %q is not supported (system, developer, user, assistant)", m.Role)
	}
	return nil
}

// completionRequest is POST /v1/completions.
type completionRequest struct {
	samplingRequest
	Prompt   json.RawMessage `json:"prompt"`
	Echo     bool            `json:"echo"`
	Logprobs *int            `json:"logprobs"`
	Suffix   *string         `json:"suffix"`
}

// stopList is "stop": a string or a list of strings.
type stopList []string

func (s *stopList) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case string(data) == "null":
		*s = nil
		return nil
	case len(data) > 0 && data[0] == '"':
		var one string
		if err := json.Unmarshal(data, &one); err != nil {
			return err
		}
		*s = stopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*s = many
	return nil
}

// maxPrompts bounds the prompts of one completions request.
const maxPrompts = 64

// prompts reads "prompt": a string, a list of strings, a list of token ids
// or a list of lists of token ids. Each is text (ids nil) or ids.
func (r *completionRequest) prompts() ([]string, [][]int32, *apiError) {
	raw := bytes.TrimSpace(r.Prompt)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, invalid("prompt", "prompt is required")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, [][]int32{nil}, nil
	}
	var ids []int32
	if json.Unmarshal(raw, &ids) == nil && len(ids) > 0 {
		return []string{""}, [][]int32{ids}, nil
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil && len(texts) > 0 {
		if len(texts) > maxPrompts {
			return nil, nil, invalid("prompt", "%d prompts; at most %d per request", len(texts), maxPrompts)
		}
		return texts, make([][]int32, len(texts)), nil
	}
	var lists [][]int32
	if json.Unmarshal(raw, &lists) == nil && len(lists) > 0 {
		if len(lists) > maxPrompts {
			return nil, nil, invalid("prompt", "%d prompts; at most %d per request", len(lists), maxPrompts)
		}
		for i, l := range lists {
			if len(l) == 0 {
				return nil, nil, invalid("prompt", "prompt %d is an empty list of token ids", i)
			}
		}
		return make([]string, len(lists)), lists, nil
	}
	return nil, nil, invalid("prompt", "prompt must be a string, a list of strings, a list of token ids or a list of lists of token ids")
}

// bodyTimeout is how long a request body may take to arrive.
const bodyTimeout = 5 * time.Minute

// decode reads a JSON request body into v: a body over the limit is a 413,
// anything that is not one JSON object of the right types a 400.
func decode(r *http.Request, w http.ResponseWriter, limit int64, v any) *apiError {
	// The body must arrive within bodyTimeout: a client trickling it cannot
	// hold a connection. The deadline is lifted once it is read, so that a
	// long answer does not hit it.
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(bodyTimeout)) == nil {
		defer rc.SetReadDeadline(time.Time{})
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	err := dec.Decode(v)
	if err == nil {
		if _, err2 := dec.Token(); err2 != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	if err == nil {
		return nil
	}
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &tooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("the request body is over the server's limit of %d bytes", limit),
			Type: "invalid_request_error", Code: str("request_too_large")}
	case errors.As(err, &typeErr) && typeErr.Field != "":
		field := strings.TrimPrefix(typeErr.Field, "samplingRequest.")
		return invalid(field, "%s: want %s, got %s", field, jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &typeErr):
		return invalid("", "the request body must be a JSON object")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("", "the request body is not valid JSON: %v", err)
	}
	// Errors of the fields' own decoders (a message, a part, stop).
	return invalid(fieldOf(err), "%v", err)
}

// jsonKind names a Go type as the JSON a client should have sent.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "an object"
}

// fieldOf guesses the field an error from a nested decoder is about.
func fieldOf(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "message"), strings.Contains(s, "role"), strings.Contains(s, "part"):
		return "messages"
	case strings.Contains(s, "string or a list of strings"):
		return "stop"
	}
	return ""
}

// choices is n: how many choices to generate for each prompt (default 1).
func (r *samplingRequest) choices() (int, *apiError) {
	if r.N == nil {
		return 1, nil
	}
	if n := *r.N; n < 1 || n > medgemma.MaxChoices {
		return 0, invalid("n", "n %d must be in 1..%d", n, medgemma.MaxChoices)
	}
	return *r.N, nil
}

// options applies a request's sampling fields over the server's defaults,
// checking each against its range (named by its JSON name).
func (r *samplingRequest) options(o generate.Options, maxTokens *int, minTokens int) (generate.Options, *apiError) {
	if maxTokens != nil {
		if *maxTokens < minTokens || *maxTokens > generate.MaxNewTokens {
			return o, invalid("max_tokens", "max_tokens %d must be in %d..%d", *maxTokens, minTokens, generate.MaxNewTokens)
		}
		o.MaxNewTokens = *maxTokens
	}
	floats := []struct {
		name     string
		v        *float64
		dst      *float64
		min, max float64
		openMin  bool
	}{
		{"temperature", r.Temperature, &o.Temperature, 0, math.MaxFloat64, false},
		{"top_p", r.TopP, &o.TopP, 0, 1, true},
		{"min_p", r.MinP, &o.MinP, 0, 1, false},
		{"frequency_penalty", r.FrequencyPenalty, &o.FrequencyPenalty, -2, 2, false},
		{"presence_penalty", r.PresencePenalty, &o.PresencePenalty, -2, 2, false},
		{"repetition_penalty", r.RepetitionPenalty, &o.RepetitionPenalty, 0, math.MaxFloat64, true},
	}
	for _, f := range floats {
		if f.v == nil {
			continue
		}
		if v := *f.v; v < f.min || v > f.max || (f.openMin && v == f.min) {
			lo := "["
			if f.openMin {
				lo = "("
			}
			return o, invalid(f.name, "%s %v must be in %s%v, %v]", f.name, v, lo, f.min, f.max)
		}
		*f.dst = *f.v
	}
	if r.TopK != nil {
		switch k := *r.TopK; {
		case k == -1 || k == 0:
			o.TopK = 0 // vLLM's and llama.cpp's "off"
		case k < 0:
			return o, invalid("top_k", "top_k %d must be positive, or -1 or 0 for off", k)
		default:
			o.TopK = k
		}
	}
	if r.Seed != nil {
		o.Seed, o.HasSeed = uint64(*r.Seed), true
	}
	if r.IgnoreEOS {
		o.StopTokens = nil
	}
	if r.Stop != nil {
		if len(r.Stop) > generate.MaxStopStrings {
			return o, invalid("stop", "%d stop strings; at most %d", len(r.Stop), generate.MaxStopStrings)
		}
		for i, s := range r.Stop {
			if s == "" || len(s) > generate.MaxStopBytes {
				return o, invalid("stop", "stop string %d is %d bytes; want 1..%d", i, len(s), generate.MaxStopBytes)
			}
		}
		o.StopStrings = r.Stop
	}
	return o, nil
}
