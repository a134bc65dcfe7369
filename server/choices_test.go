package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestChoices: n choices of a chat and of completions (several prompts)
// are each what a request with that choice's seed gives alone, in OpenAI's
// order, whole and streamed (chunks interleaved, each naming its index);
// the usage counts a prompt once and every choice's tokens.
func TestChoices(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma-text", Options{}, 8)
	sampled := func(extra map[string]any) map[string]any {
		body := greedy(userText("Describe the lungs"), map[string]any{"temperature": 1, "seed": 40, "max_tokens": 8})
		for k, v := range extra {
			body[k] = v
		}
		return body
	}
	status, body, _ := ts.do(t, "POST", "/v1/chat/completions", sampled(map[string]any{"n": 3, "logprobs": true}))
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	whole := parse(t, body)
	if len(whole.Choices) != 3 {
		t.Fatalf("%d choices for n=3: %s", len(whole.Choices), body)
	}
	completion := 0
	for i, c := range whole.Choices {
		_, b, _ := ts.do(t, "POST", "/v1/chat/completions", sampled(map[string]any{"seed": 40 + i, "logprobs": true}))
		alone := parse(t, b)
		if c.Index != i || c.Message.Content != alone.Choices[0].Message.Content || len(c.Logprobs.Content) != len(alone.Choices[0].Logprobs.Content) {
			t.Errorf("choice %d (index %d): %q, alone with seed %d: %q", i, c.Index, c.Message.Content, 40+i, alone.Choices[0].Message.Content)
		}
		if whole.Usage.PromptTokens != alone.Usage.PromptTokens {
			t.Errorf("prompt tokens %d for n=3, %d alone", whole.Usage.PromptTokens, alone.Usage.PromptTokens)
		}
		completion += alone.Usage.CompletionTokens
	}
	if whole.Usage.CompletionTokens != completion {
		t.Errorf("completion tokens %d, the choices' sum %d", whole.Usage.CompletionTokens, completion)
	}
	if whole.Choices[0].Message.Content == whole.Choices[1].Message.Content && whole.Choices[1].Message.Content == whole.Choices[2].Message.Content {
		t.Error("three sampled choices are the same")
	}

	// Streamed: per index, a role chunk first, the text, one finish chunk.
	status, body, _ = ts.do(t, "POST", "/v1/chat/completions", sampled(map[string]any{"n": 3, "stream": true, "stream_options": map[string]any{"include_usage": true}}))
	evs, done := events(t, body)
	if status != 200 || !done {
		t.Fatalf("stream: %d %s", status, body)
	}
	texts := make([]strings.Builder, 3)
	roles, finishes := make([]int, 3), make([]int, 3)
	for _, e := range evs[:len(evs)-1] {
		if len(e.Choices) != 1 || e.Choices[0].Index < 0 || e.Choices[0].Index > 2 {
			t.Fatalf("a chunk: %+v", e)
		}
		c := e.Choices[0]
		switch {
		case c.Delta.Role == "assistant":
			if texts[c.Index].Len() > 0 || finishes[c.Index] > 0 {
				t.Errorf("choice %d: its role after its text", c.Index)
			}
			roles[c.Index]++
		case c.FinishReason != nil:
			finishes[c.Index]++
		}
		if c.Delta.Content != nil {
			texts[c.Index].WriteString(*c.Delta.Content)
		}
	}
	for i := range 3 {
		if roles[i] != 1 || finishes[i] != 1 || texts[i].String() != whole.Choices[i].Message.Content {
			t.Errorf("streamed choice %d: %d role chunks, %d finish chunks, %q; whole %q", i, roles[i], finishes[i], texts[i].String(), whole.Choices[i].Message.Content)
		}
	}
	if u := evs[len(evs)-1].Usage; u == nil || u.CompletionTokens != whole.Usage.CompletionTokens {
		t.Errorf("streamed usage %+v, whole %+v", u, whole.Usage)
	}

	// Completions: two prompts, two choices each: index p*2+j.
	post := func(body map[string]any) completionResult { t.Helper(); return ts.complete(t, body) }
	prompts := []string{"The chest X-ray shows", "Pneumonia is"}
	r := post(map[string]any{"prompt": prompts, "n": 2, "max_tokens": 5, "temperature": 1, "seed": 3})
	if len(r.Choices) != 4 {
		t.Fatalf("%d choices for 2 prompts x 2", len(r.Choices))
	}
	prompt := 0
	for c, ch := range r.Choices {
		p, j := c/2, c%2
		alone := post(map[string]any{"prompt": prompts[p], "max_tokens": 5, "temperature": 1, "seed": 3 + j})
		if ch.Index != c || ch.Text != alone.Choices[0].Text {
			t.Errorf("completion choice %d (prompt %d, seed %d): index %d %q, alone %q", c, p, 3+j, ch.Index, ch.Text, alone.Choices[0].Text)
		}
		if j == 0 {
			prompt += alone.Usage.PromptTokens
		}
	}
	if r.Usage.PromptTokens != prompt {
		t.Errorf("prompt tokens %d, want each prompt once: %d", r.Usage.PromptTokens, prompt)
	}
	// Streamed with echo: each choice's prompt, then its text.
	status, data, _ := ts.do(t, "POST", "/v1/completions", map[string]any{"model": "medgemma-tiny", "prompt": prompts, "n": 2, "max_tokens": 5,
		"temperature": 1, "seed": 3, "echo": true, "stream": true})
	if _, done := events(t, data); status != 200 || !done {
		t.Fatalf("completions stream: %d %s", status, data)
	}
	streamed := make([]string, 4)
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "data: {"); ok {
			var cr completionResult
			if err := json.Unmarshal([]byte("{"+p), &cr); err != nil {
				t.Fatal(err)
			}
			for _, ch := range cr.Choices {
				streamed[ch.Index] += ch.Text
			}
		}
	}
	for c, ch := range r.Choices {
		if want := prompts[c/2] + ch.Text; streamed[c] != want {
			t.Errorf("streamed completion choice %d: %q, want %q", c, streamed[c], want)
		}
	}
	for _, n := range []int{0, 17} {
		status, body, _ := ts.do(t, "POST", "/v1/chat/completions", sampled(map[string]any{"n": n}))
		if r := parse(t, body); status != 400 || r.Error == nil || r.Error.Param == nil || *r.Error.Param != "n" {
			t.Errorf("n=%d: %d %s", n, status, body)
		}
	}
}
