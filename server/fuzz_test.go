package server

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/medgemma/medgemma/generate"
)

// FuzzDecodeRequest feeds arbitrary bodies to the request decoding and
// validation of both endpoints: a 4xx naming what is wrong or options that
// validate, never a panic.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "temperature": 0.7, "stop": ["\n"]}`,
		`{"messages": [{"role": "developer", "content": [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}], "logprobs": true, "top_logprobs": 3, "stream": true, "stream_options": {"include_usage": true}}`,
		`{"prompt": [[1, 2, 3], [4]], "echo": true, "logprobs": 2, "max_tokens": 0, "top_k": -1, "min_p": 0.1, "repetition_penalty": 1.1, "seed": -5}`,
		`{"prompt": "text", "stop": "x", "n": 1, "frequency_penalty": 2, "presence_penalty": -2}`,
		`{"messages": null}`, `[]`, `{"messages": [{"role": "user"}]}`, `{"max_tokens": 1e40}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		defaults := generate.Options{MaxNewTokens: 16}
		check := func(e *apiError) {
			if e != nil && (e.status < 400 || e.status > 499 || e.Message == "" || e.Type == "") {
				t.Fatalf("error %+v", e)
			}
		}
		var cr chatRequest
		r := httptest.NewRequest("POST", "/v1/chat/completions", bytes.NewReader(body))
		e := decode(r, httptest.NewRecorder(), 1<<20, &cr)
		check(e)
		if e == nil {
			o, e := cr.options(defaults, cr.maxTokensOf(), 1)
			check(e)
			if e == nil {
				if err := o.Validate(); err != nil {
					t.Fatalf("options %+v passed the checks but not Validate: %v", o, err)
				}
			}
		}
		var pr completionRequest
		r = httptest.NewRequest("POST", "/v1/completions", bytes.NewReader(body))
		e = decode(r, httptest.NewRecorder(), 1<<20, &pr)
		check(e)
		if e == nil {
			texts, ids, e := pr.prompts()
			check(e)
			if e == nil && (len(texts) != len(ids) || len(texts) == 0 || len(texts) > maxPrompts) {
				t.Fatalf("%d texts, %d id lists", len(texts), len(ids))
			}
			_, e = pr.options(defaults, pr.MaxTokens, 0)
			check(e)
		}
	})
}
