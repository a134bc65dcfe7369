package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/internal/testenv"
)

var (
	modelsMu sync.Mutex
	models   = map[string]*medgemma.Model{}
)

// tiny loads a tiny checkpoint once per test binary.
func tiny(t testing.TB, name string) *medgemma.Model {
	t.Helper()
	modelsMu.Lock()
	defer modelsMu.Unlock()
	if m, ok := models[name]; ok {
		return m
	}
	m, err := medgemma.Load(context.Background(), filepath.Join("..", "testdata", "models", name),
		medgemma.LoadOptions{Tokenizer: filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")})
	if err != nil {
		t.Fatal(err)
	}
	models[name] = m
	return m
}

// testServer is a server on loopback over a tiny checkpoint.
type testServer struct {
	url   string
	srv   *Server
	m     *medgemma.Model
	sched *medgemma.Scheduler
	logs  *bytes.Buffer
}

func newTestServer(t testing.TB, name string, opts Options, maxQueue int, so ...medgemma.SchedulerOptions) *testServer {
	t.Helper()
	m := tiny(t, name)
	if opts.ModelName == "" {
		opts.ModelName = "medgemma-tiny"
	}
	logs := &bytes.Buffer{}
	var mu sync.Mutex
	opts.Logger = slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	srv := New(opts)
	o := medgemma.SchedulerOptions{Parallel: 4, Context: 2048}
	if len(so) > 0 {
		o = so[0]
	}
	o.MaxQueue = maxQueue
	sched, err := medgemma.NewScheduler(m, o)
	if err != nil {
		t.Fatal(err)
	}
	srv.Ready(m, sched, m.Defaults())
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		sched.Close()
	})
	return &testServer{url: hs.URL, srv: srv, m: m, sched: sched, logs: logs}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// do sends a request and returns the status and body.
func (ts *testServer) do(t testing.TB, method, path string, body any, header ...string) (int, []byte, http.Header) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, ts.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data, resp.Header
}

// chatOut is the parts of a chat completion the tests read.
type chatResult struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role             string  `json:"role"`
			Content          string  `json:"content"`
			ReasoningContent *string `json:"reasoning_content"`
		} `json:"message"`
		Delta struct {
			Role             string  `json:"role"`
			Content          *string `json:"content"`
			ReasoningContent *string `json:"reasoning_content"`
		} `json:"delta"`
		Logprobs *struct {
			Content []struct {
				Token       string  `json:"token"`
				Logprob     float64 `json:"logprob"`
				Bytes       []int   `json:"bytes"`
				TopLogprobs []struct {
					Token   string  `json:"token"`
					Logprob float64 `json:"logprob"`
				} `json:"top_logprobs"`
			} `json:"content"`
		} `json:"logprobs"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		TotalTokens         int `json:"total_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error *struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func parse(t testing.TB, data []byte) chatResult {
	t.Helper()
	var r chatResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return r
}

// events reads a Server-Sent Events body: the JSON of each event, and
// whether it ended with [DONE].
func events(t testing.TB, data []byte) ([]chatResult, bool) {
	t.Helper()
	var out []chatResult
	sc := bufio.NewScanner(bytes.NewReader(data))
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		payload, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an event line: %q", line)
		}
		if payload == "[DONE]" {
			done = true
			continue
		}
		if done {
			t.Fatal("an event after [DONE]")
		}
		out = append(out, parse(t, []byte(payload)))
	}
	return out, done
}

func greedy(messages any, extra map[string]any) map[string]any {
	body := map[string]any{"model": "medgemma-tiny", "messages": messages, "temperature": 0, "max_tokens": 6}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

func userText(s string) []map[string]any { return []map[string]any{{"role": "user", "content": s}} }

// pngURI is a small PNG as a data: URI.
func pngURI(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "imageproc", "testdata", "images", "tiny_rgb_20x30.png"))
	if err != nil {
		t.Fatal(err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(data)
}

// TestChatCompletion: a greedy chat through the API equals the library's
// answer for the same messages (ids through return_tokens_as_token_ids,
// logprobs), for text and for an image and a DICOM file as data: URIs,
// with system and developer roles and several turns.
func TestChatCompletion(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma", Options{}, 8)
	dcm, err := os.ReadFile(filepath.Join("..", "imageproc", "testdata", "dicom", "ct_test_series_image0.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	img := pngURI(t)
	dicomURI := "data:application/dicom;base64," + base64.StdEncoding.EncodeToString(dcm)
	for _, c := range []struct {
		name     string
		messages []map[string]any
		lib      []chat.Message
	}{
		{"text", userText("Hello"), []chat.Message{{Role: "user", Content: []chat.Part{chat.Text("Hello")}}}},
		{"system and turns", []map[string]any{
			{"role": "developer", "content": "You are an expert radiologist."},
			{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "More"}},
			[]chat.Message{{Role: "system", Content: []chat.Part{chat.Text("You are an expert radiologist.")}},
				{Role: "user", Content: []chat.Part{chat.Text("Hi")}}, {Role: "assistant", Content: []chat.Part{chat.Text("Hello.")}},
				{Role: "user", Content: []chat.Part{chat.Text("More")}}}},
		{"image", []map[string]any{{"role": "user", "content": []map[string]any{
			{"type": "text", "text": "Describe this X-ray"}, {"type": "image_url", "image_url": map[string]string{"url": img}}}}},
			[]chat.Message{{Role: "user", Content: []chat.Part{chat.Text("Describe this X-ray"), chat.Image(img)}}}},
		{"dicom", []map[string]any{{"role": "user", "content": []map[string]any{
			{"type": "image_url", "image_url": map[string]string{"url": dicomURI}}, {"type": "text", "text": "Findings?"}}}},
			[]chat.Message{{Role: "user", Content: []chat.Part{chat.Image(dicomURI), chat.Text("Findings?")}}}},
	} {
		status, body, _ := ts.do(t, "POST", "/v1/chat/completions", greedy(c.messages, map[string]any{"logprobs": true, "top_logprobs": 3, "return_tokens_as_token_ids": true}))
		if status != 200 {
			t.Fatalf("%s: %d %s", c.name, status, body)
		}
		got := parse(t, body)
		o := ts.m.Defaults()
		o.Temperature, o.MaxNewTokens, o.Logprobs, o.TopLogprobs = 0, 6, true, 3
		want, err := ts.m.Chat(context.Background(), c.lib, medgemma.ChatOptions{Generate: o})
		if err != nil {
			t.Fatal(err)
		}
		ch := got.Choices[0]
		if !strings.HasPrefix(got.ID, "chatcmpl-") || got.Object != "chat.completion" || got.Model != "medgemma-tiny" || ch.Message.Role != "assistant" ||
			ch.Message.Content != want.Text || *ch.FinishReason != want.FinishReason {
			t.Errorf("%s: %s\nwant text %q (%s)", c.name, body, want.Text, want.FinishReason)
		}
		if got.Usage.PromptTokens != len(want.PromptIDs) || got.Usage.CompletionTokens != len(want.Tokens) || got.Usage.TotalTokens != len(want.PromptIDs)+len(want.Tokens) {
			t.Errorf("%s: usage %+v, want %d + %d", c.name, got.Usage, len(want.PromptIDs), len(want.Tokens))
		}
		lps := ch.Logprobs.Content
		if len(lps) != len(want.Logprobs) {
			t.Fatalf("%s: %d logprobs, want %d", c.name, len(lps), len(want.Logprobs))
		}
		for i, lp := range lps {
			w := want.Logprobs[i]
			if lp.Token != fmt.Sprintf("token_id:%d", w.Token) || math.Abs(lp.Logprob-float64(w.Logprob)) > 1e-5 || len(lp.TopLogprobs) != 3 ||
				lp.TopLogprobs[0].Token != fmt.Sprintf("token_id:%d", w.Top[0].Token) {
				t.Errorf("%s step %d: %+v, want %+v", c.name, i, lp, w)
			}
		}
	}
}

// TestChatStream: the chunks are the role, then the content pieces, whose
// concatenation and logprobs equal the whole answer's, then the finish
// reason, the usage when asked, and [DONE].
func TestChatStream(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma-text", Options{}, 8)
	req := greedy(userText("Tell me about the heart"), map[string]any{"max_tokens": 12, "logprobs": true, "top_logprobs": 2})
	status, body, _ := ts.do(t, "POST", "/v1/chat/completions", req)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	whole := parse(t, body)
	req["stream"] = true
	req["stream_options"] = map[string]any{"include_usage": true}
	status, body, hdr := ts.do(t, "POST", "/v1/chat/completions", req)
	if status != 200 || hdr.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s %s", status, hdr.Get("Content-Type"), body)
	}
	evs, done := events(t, body)
	if !done || len(evs) < 4 {
		t.Fatalf("%d events, done %v:\n%s", len(evs), done, body)
	}
	if evs[0].Choices[0].Delta.Role != "assistant" || evs[0].Object != "chat.completion.chunk" || evs[0].ID != evs[1].ID {
		t.Errorf("first chunk: %+v", evs[0])
	}
	var text strings.Builder
	var lps []float64
	for _, e := range evs[1 : len(evs)-2] {
		c := e.Choices[0]
		if c.FinishReason != nil || c.Delta.Role != "" {
			t.Errorf("a middle chunk: %+v", c)
		}
		if c.Delta.Content != nil {
			text.WriteString(*c.Delta.Content)
		}
		if c.Logprobs != nil {
			for _, lp := range c.Logprobs.Content {
				lps = append(lps, lp.Logprob)
			}
		}
	}
	last, usageEv := evs[len(evs)-2], evs[len(evs)-1]
	if last.Choices[0].FinishReason == nil || *last.Choices[0].FinishReason != *whole.Choices[0].FinishReason {
		t.Errorf("finish chunk: %+v", last)
	}
	if text.String() != whole.Choices[0].Message.Content {
		t.Errorf("streamed %q, whole %q", text.String(), whole.Choices[0].Message.Content)
	}
	var want []float64
	for _, lp := range whole.Choices[0].Logprobs.Content {
		want = append(want, lp.Logprob)
	}
	if !slices.Equal(lps, want) {
		t.Errorf("streamed logprobs %v, whole %v", lps, want)
	}
	if len(usageEv.Choices) != 0 || usageEv.Usage == nil || usageEv.Usage.CompletionTokens != whole.Usage.CompletionTokens {
		t.Errorf("usage chunk: %+v", usageEv)
	}
}

// TestReuse: a conversation resent whole with one more turn prefills only
// the new part (cached_tokens) and answers exactly as without the cache; an
// image sent again is not encoded again.
func TestReuse(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma", Options{}, 8)
	img := pngURI(t)
	turn1 := []map[string]any{{"role": "user", "content": []map[string]any{
		{"type": "text", "text": "Describe"}, {"type": "image_url", "image_url": map[string]string{"url": img}}}}}
	_, body, _ := ts.do(t, "POST", "/v1/chat/completions", greedy(turn1, nil))
	first := parse(t, body)
	turn2 := append(turn1, map[string]any{"role": "assistant", "content": first.Choices[0].Message.Content}, map[string]any{"role": "user", "content": "More?"})
	_, body, _ = ts.do(t, "POST", "/v1/chat/completions", greedy(turn2, map[string]any{"logprobs": true}))
	reused := parse(t, body)
	if reused.Usage.PromptTokensDetails.CachedTokens < first.Usage.PromptTokens {
		t.Errorf("cached tokens %d, the first prompt had %d", reused.Usage.PromptTokensDetails.CachedTokens, first.Usage.PromptTokens)
	}
	// The same conversation on a fresh model.
	fresh, err := medgemma.Load(context.Background(), filepath.Join("..", "testdata", "models", "tiny-medgemma"),
		medgemma.LoadOptions{Tokenizer: filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	sched, err := medgemma.NewScheduler(fresh, medgemma.SchedulerOptions{Context: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	other := New(Options{ModelName: "medgemma-tiny", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	other.Ready(fresh, sched, fresh.Defaults())
	hs := httptest.NewServer(other.Handler())
	defer hs.Close()
	fts := &testServer{url: hs.URL}
	_, body, _ = fts.do(t, "POST", "/v1/chat/completions", greedy(turn2, map[string]any{"logprobs": true}))
	want := parse(t, body)
	if want.Usage.PromptTokensDetails.CachedTokens != 0 || reused.Choices[0].Message.Content != want.Choices[0].Message.Content {
		t.Errorf("with the cache %q, fresh %q (cached %d)", reused.Choices[0].Message.Content, want.Choices[0].Message.Content, want.Usage.PromptTokensDetails.CachedTokens)
	}
	for i, lp := range want.Choices[0].Logprobs.Content {
		if d := math.Abs(lp.Logprob - reused.Choices[0].Logprobs.Content[i].Logprob); d > 1e-5 {
			t.Errorf("step %d: logprob %v with the cache, %v fresh", i, reused.Choices[0].Logprobs.Content[i].Logprob, lp.Logprob)
		}
	}
	// The image again, in a new conversation: from the cache of encoded images.
	before := ts.metricValue(t, "medgemma_image_cache_hits_total")
	ts.do(t, "POST", "/v1/chat/completions", greedy([]map[string]any{{"role": "user", "content": []map[string]any{
		{"type": "text", "text": "Again"}, {"type": "image_url", "image_url": map[string]string{"url": img}}}}}, nil))
	if hits := ts.metricValue(t, "medgemma_image_cache_hits_total"); hits != before+1 {
		t.Errorf("image cache hits %v -> %v", before, hits)
	}
}

// metricValue reads one series' value from /metrics.
func (ts *testServer) metricValue(t testing.TB, series string) float64 {
	t.Helper()
	_, body, _ := ts.do(t, "GET", "/metrics", nil)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("no %s in /metrics", series)
	return 0
}

type completionResult struct {
	Choices []struct {
		Index    int    `json:"index"`
		Text     string `json:"text"`
		Logprobs *struct {
			Tokens        []string             `json:"tokens"`
			TokenLogprobs []*float64           `json:"token_logprobs"`
			TopLogprobs   []map[string]float64 `json:"top_logprobs"`
			TextOffset    []int                `json:"text_offset"`
		} `json:"logprobs"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Object string `json:"object"`
}

// complete posts a completions request (for the tiny model) that must
// succeed.
func (ts *testServer) complete(t testing.TB, body map[string]any) completionResult {
	t.Helper()
	body["model"] = "medgemma-tiny"
	status, data, _ := ts.do(t, "POST", "/v1/completions", body)
	if status != 200 {
		t.Fatalf("%d %s", status, data)
	}
	var r completionResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCompletions: a raw prompt (text, ids, lists of them), echo with
// logprobs in the shape lm-evaluation-harness reads (null first, the chosen
// token among the top ones, offsets), equal to the library's scores.
func TestCompletions(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma-text", Options{}, 8)
	tok := ts.m.Tokenizer()
	text := "The chest X-ray shows"
	ids := tok.Encode(text, true)
	post := func(body map[string]any) completionResult { t.Helper(); return ts.complete(t, body) }
	r := post(map[string]any{"prompt": text, "max_tokens": 1, "temperature": 0, "echo": true, "logprobs": 1})
	o := ts.m.Defaults()
	o.Temperature, o.MaxNewTokens, o.Logprobs, o.TopLogprobs = 0, 1, true, 1
	want, err := ts.m.Complete(context.Background(), ids, medgemma.CompleteOptions{Generate: o, Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Choices[0]
	lp := c.Logprobs
	if r.Object != "text_completion" || c.Text != text+want.Text || len(lp.Tokens) != len(ids)+1 || lp.TokenLogprobs[0] != nil || lp.TopLogprobs[0] != nil {
		t.Fatalf("echo: %+v", r)
	}
	for i, sc := range want.PromptLogprobs {
		got := lp.TokenLogprobs[i+1]
		if got == nil || math.Abs(*got-float64(sc.Logprob)) > 1e-6 || lp.TopLogprobs[i+1][sc.Text] != *got || len(lp.TopLogprobs[i+1]) > 2 {
			t.Errorf("token %d: %v %v, want %v", i+1, got, lp.TopLogprobs[i+1], sc.Logprob)
		}
	}
	offset := 0
	for i, tk := range lp.Tokens {
		if lp.TextOffset[i] != offset {
			t.Errorf("offset %d: %d, want %d", i, lp.TextOffset[i], offset)
		}
		offset += len([]rune(tk))
	}
	if r.Usage.PromptTokens != len(ids) || r.Usage.CompletionTokens != 1 {
		t.Errorf("usage %+v", r.Usage)
	}
	// Scoring only (max_tokens 0), ids, and a batch of prompts.
	r = post(map[string]any{"prompt": ids, "max_tokens": 0, "echo": true, "logprobs": 0})
	if len(r.Choices[0].Logprobs.Tokens) != len(ids) || r.Usage.CompletionTokens != 0 {
		t.Errorf("score only: %+v", r)
	}
	r = post(map[string]any{"prompt": []any{text, "Another"}, "max_tokens": 2, "temperature": 0})
	r2 := post(map[string]any{"prompt": [][]int32{ids, tok.Encode("Another", true)}, "max_tokens": 2, "temperature": 0})
	if len(r.Choices) != 2 || r.Choices[1].Index != 1 || r.Choices[0].Text != r2.Choices[0].Text || r.Choices[1].Text != r2.Choices[1].Text || r.Choices[0].Logprobs != nil {
		t.Errorf("batch: %+v / %+v", r, r2)
	}
	// Streamed, with the echo first.
	status, data, _ := ts.do(t, "POST", "/v1/completions", map[string]any{"model": "medgemma-tiny", "prompt": text, "max_tokens": 3, "temperature": 0, "echo": true, "stream": true})
	_, done := events(t, data)
	var streamed strings.Builder
	if status != 200 || !done {
		t.Fatalf("stream: %d %s", status, data)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "data: {"); ok {
			var cr completionResult
			json.Unmarshal([]byte("{"+p), &cr)
			if len(cr.Choices) > 0 {
				streamed.WriteString(cr.Choices[0].Text)
			}
		}
	}
	whole := post(map[string]any{"prompt": text, "max_tokens": 3, "temperature": 0, "echo": true})
	if streamed.String() != whole.Choices[0].Text {
		t.Errorf("streamed %q, whole %q", streamed.String(), whole.Choices[0].Text)
	}
}

// TestErrors: every refusal has its status and OpenAI's error shape.
func TestErrors(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma", Options{APIKey: "sekret", MaxBody: 1 << 20, Context: 200}, 8)
	auth := []string{"Authorization", "Bearer sekret"}
	ok := userText("Hello")
	big := strings.Repeat("word ", 400)
	for _, c := range []struct {
		name   string
		method string
		path   string
		body   any
		header []string
		status int
		param  string
		code   string
	}{
		{"no key", "POST", "/v1/chat/completions", greedy(ok, nil), nil, 401, "", "invalid_api_key"},
		{"wrong key", "POST", "/v1/chat/completions", greedy(ok, nil), []string{"Authorization", "Bearer sekret2"}, 401, "", "invalid_api_key"},
		{"invalid JSON", "POST", "/v1/chat/completions", `{"messages": [`, auth, 400, "", ""},
		{"not an object", "POST", "/v1/chat/completions", `[1, 2]`, auth, 400, "", ""},
		{"trailing data", "POST", "/v1/chat/completions", `{"messages": []} {}`, auth, 400, "", ""},
		{"wrong type", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "max_tokens": "5"}`, auth, 400, "max_tokens", ""},
		{"wrong type in the shared fields", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}`, auth, 400, "temperature", ""},
		{"no messages", "POST", "/v1/chat/completions", map[string]any{"messages": []any{}}, auth, 400, "messages", ""},
		{"tool role", "POST", "/v1/chat/completions", greedy([]map[string]any{{"role": "tool", "content": "x"}}, nil), auth, 400, "messages", ""},
		{"roles out of order", "POST", "/v1/chat/completions", greedy([]map[string]any{{"role": "user", "content": "a"}, {"role": "user", "content": "b"}}, nil), auth, 400, "messages", ""},
		{"over the context", "POST", "/v1/chat/completions", greedy(userText(big), nil), auth, 400, "messages", "context_length_exceeded"},
		{"temperature", "POST", "/v1/chat/completions", greedy(ok, map[string]any{"temperature": -1}), auth, 400, "temperature", ""},
		{"top_p", "POST", "/v1/chat/completions", greedy(ok, map[string]any{"top_p": 0}), auth, 400, "top_p", ""},
		{"max_tokens", "POST", "/v1/chat/completions", greedy(ok, map[string]any{"max_tokens": 0}), auth, 400, "max_tokens", ""},
		{"n", "POST", "/v1/chat/completions", greedy(ok, map[string]any{"n": 17}), auth, 400, "n", ""},
		{"completions n", "POST", "/v1/completions", map[string]any{"prompt": "x", "n": 0}, auth, 400, "n", ""},
		{"top_logprobs alone", "POST", "/v1/chat/completions", greedy(ok, map[string]any{"top_logprobs": 2}), auth, 400, "top_logprobs", ""},
		{"stop", "POST", "/v1/chat/completions", greedy(ok, map[string]any{"stop": []string{""}}), auth, 400, "stop", ""},
		{"stop type", "POST", "/v1/chat/completions", greedy(ok, map[string]any{"stop": 5}), auth, 400, "stop", ""},
		{"a file as image", "POST", "/v1/chat/completions", greedy([]map[string]any{{"role": "user", "content": []map[string]any{
			{"type": "image_url", "image_url": map[string]string{"url": "/etc/passwd"}}}}}, nil), auth, 400, "messages", "invalid_image_url"},
		{"an http image", "POST", "/v1/chat/completions", greedy([]map[string]any{{"role": "user", "content": []map[string]any{
			{"type": "image_url", "image_url": map[string]string{"url": "http://127.0.0.1:1/x.png"}}}}}, nil), auth, 400, "messages", "invalid_image_url"},
		{"a corrupt image", "POST", "/v1/chat/completions", greedy([]map[string]any{{"role": "user", "content": []map[string]any{
			{"type": "image_url", "image_url": map[string]string{"url": "data:image/png;base64,iVBORw0KGgoAAAA="}}}}}, nil), auth, 400, "messages", "invalid_image"},
		{"body over the limit", "POST", "/v1/chat/completions", `{"messages": "` + strings.Repeat("x", 2<<20) + `"}`, auth, 413, "", "request_too_large"},
		{"unknown model", "POST", "/v1/chat/completions", map[string]any{"model": "gpt-4", "messages": ok}, auth, 404, "model", "model_not_found"},
		{"unknown path", "GET", "/v1/nothing", nil, auth, 404, "", "not_found"},
		{"method", "GET", "/v1/chat/completions", nil, auth, 405, "", "method_not_allowed"},
		{"completions suffix", "POST", "/v1/completions", map[string]any{"prompt": "x", "suffix": "y"}, auth, 400, "suffix", ""},
		{"completions prompt", "POST", "/v1/completions", map[string]any{"prompt": map[string]any{}}, auth, 400, "prompt", ""},
		{"completions empty ids", "POST", "/v1/completions", map[string]any{"prompt": [][]int{{}}}, auth, 400, "prompt", ""},
		{"completions bad id", "POST", "/v1/completions", map[string]any{"prompt": []int{2, 999999}}, auth, 400, "prompt", ""},
		{"completions nothing to do", "POST", "/v1/completions", map[string]any{"prompt": "x", "max_tokens": 0}, auth, 400, "max_tokens", ""},
		{"unknown model in the path", "GET", "/v1/models/gpt-4", nil, auth, 404, "model", "model_not_found"},
	} {
		status, body, _ := ts.do(t, c.method, c.path, c.body, c.header...)
		if status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, status, body, c.status)
			continue
		}
		r := parse(t, body)
		switch {
		case r.Error == nil || r.Error.Message == "" || r.Error.Type == "":
			t.Errorf("%s: not OpenAI's error shape: %s", c.name, body)
		case c.param != "" && (r.Error.Param == nil || *r.Error.Param != c.param):
			t.Errorf("%s: param %v, want %q (%s)", c.name, r.Error.Param, c.param, body)
		case c.code != "" && (r.Error.Code == nil || *r.Error.Code != c.code):
			t.Errorf("%s: code %v, want %q (%s)", c.name, r.Error.Code, c.code, body)
		}
	}
	// Unknown fields are ignored; health, readiness and metrics need no key.
	if status, body, _ := ts.do(t, "POST", "/v1/chat/completions", greedy(ok, map[string]any{"tools": []any{}, "user": "x", "frobnicate": 1}), auth...); status != 200 {
		t.Errorf("unknown fields: %d %s", status, body)
	}
	for _, p := range []string{"/health", "/ready", "/metrics"} {
		if status, _, _ := ts.do(t, "GET", p, nil); status != 200 {
			t.Errorf("%s: %d", p, status)
		}
	}
	if status, body, _ := ts.do(t, "GET", "/v1/models", nil, auth...); status != 200 || !strings.Contains(string(body), `"id":"medgemma-tiny"`) {
		t.Errorf("/v1/models: %d %s", status, body)
	}
}

// TestLoadingAndDraining: 503 (with Retry-After) before Ready and after
// Drain; /health is 200 throughout.
func TestLoadingAndDraining(t *testing.T) {
	srv := New(Options{ModelName: "x", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	ts := &testServer{url: hs.URL}
	check := func(when string, ready int) {
		t.Helper()
		if status, _, _ := ts.do(t, "GET", "/health", nil); status != 200 {
			t.Errorf("%s: /health %d", when, status)
		}
		if status, _, _ := ts.do(t, "GET", "/ready", nil); status != ready {
			t.Errorf("%s: /ready %d, want %d", when, status, ready)
		}
	}
	check("loading", 503)
	status, body, hdr := ts.do(t, "POST", "/v1/chat/completions", greedy(userText("x"), nil))
	if status != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "loading") {
		t.Errorf("while loading: %d %s", status, body)
	}
	m := tiny(t, "tiny-medgemma-text")
	sched, err := medgemma.NewScheduler(m, medgemma.SchedulerOptions{Context: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	srv.Ready(m, sched, m.Defaults())
	check("ready", 200)
	srv.Drain()
	check("draining", 503)
	if status, body, _ := ts.do(t, "POST", "/v1/chat/completions", greedy(userText("x"), map[string]any{"model": "x"})); status != 503 || !strings.Contains(string(body), "shutting down") {
		t.Errorf("draining: %d %s", status, body)
	}
}

// TestQueueFull: with one request running and the queue full, the next is
// refused with 429 and Retry-After.
func TestQueueFull(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma-text", Options{}, 1, medgemma.SchedulerOptions{Parallel: 1, Context: 4096})
	long := generate.Options{MaxNewTokens: 4000, StopTokens: []int32{-1}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 2 { // one runs, then one waits
		go ts.sched.Chat(ctx, []chat.Message{{Role: "user", Content: []chat.Part{chat.Text("a")}}}, medgemma.ChatOptions{Generate: long})
		waitFor(t, func() bool { return ts.sched.Running() == 1 && ts.sched.Queued() == i })
	}
	waitFor(t, func() bool {
		q, r := ts.sched.Queued(), ts.sched.Running()
		if q > 1 || r > 1 {
			t.Fatalf("queued %d, running %d", q, r)
		}
		return q == 1 && r == 1
	})
	status, body, hdr := ts.do(t, "POST", "/v1/chat/completions", greedy(userText("c"), nil))
	if status != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "rate_limit_exceeded") {
		t.Errorf("%d %s (Retry-After %q)", status, body, hdr.Get("Retry-After"))
	}
}

// TestClientDisconnect: a streaming client that goes away stops its
// generation within a token.
func TestClientDisconnect(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma-text", Options{}, 4)
	ctx, cancel := context.WithCancel(context.Background())
	body, _ := json.Marshal(greedy(userText("Write a long report"), map[string]any{"max_tokens": 2000, "stream": true}))
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/v1/chat/completions", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	for range 3 { // the role and two pieces
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		br.ReadString('\n')
	}
	cancel()
	resp.Body.Close()
	waitFor(t, func() bool { return ts.sched.Running() == 0 })
	if n := ts.metricValue(t, "medgemma_generated_tokens_total"); n >= 2000 {
		t.Errorf("generated %v tokens for a client that left", n)
	}
}

// TestRequestTimeout: a request over the timeout gets 504.
func TestRequestTimeout(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma-text", Options{RequestTimeout: 50 * time.Millisecond}, 4)
	status, body, _ := ts.do(t, "POST", "/v1/chat/completions", greedy(userText(strings.Repeat("word ", 1000)), map[string]any{"max_tokens": 1000}))
	if status != 504 || !strings.Contains(string(body), "request_timeout") {
		t.Errorf("%d %s", status, body)
	}
}

// TestLogs: one line per request, with the tokens and without the content
// (unless LogContent).
func TestLogs(t *testing.T) {
	for _, content := range []bool{false, true} {
		ts := newTestServer(t, "tiny-medgemma-text", Options{LogContent: content}, 4)
		ts.do(t, "POST", "/v1/chat/completions", greedy(userText("SECRET-PATIENT-NAME"), nil))
		var line map[string]any
		if err := json.Unmarshal(ts.logs.Bytes(), &line); err != nil {
			t.Fatalf("%v: %s", err, ts.logs)
		}
		if line["status"] != float64(200) || line["path"] != "/v1/chat/completions" || line["prompt_tokens"] == nil || line["completion_tokens"] != float64(6) {
			t.Errorf("log line %v", line)
		}
		if got := strings.Contains(ts.logs.String(), "SECRET-PATIENT-NAME"); got != content {
			t.Errorf("LogContent %v: content logged %v: %s", content, got, ts.logs)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
	}
}

// TestImageHosts: an http(s) image is fetched only from the hosts the
// server was started with (on loopback here).
func TestImageHosts(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "imageproc", "testdata", "images", "tiny_rgb_20x30.png"))
	if err != nil {
		t.Fatal(err)
	}
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer images.Close()
	msg := []map[string]any{{"role": "user", "content": []map[string]any{{"type": "image_url", "image_url": map[string]string{"url": images.URL + "/x.png"}}}}}
	closed := newTestServer(t, "tiny-medgemma", Options{}, 4)
	if status, body, _ := closed.do(t, "POST", "/v1/chat/completions", greedy(msg, nil)); status != 400 || !strings.Contains(string(body), "not allowed") {
		t.Errorf("no hosts allowed: %d %s", status, body)
	}
	open := newTestServer(t, "tiny-medgemma", Options{ImageSources: medgemma.ImageSources{Hosts: []string{"127.0.0.1"}}}, 4)
	status, body, _ := open.do(t, "POST", "/v1/chat/completions", greedy(msg, nil))
	if status != 200 {
		t.Errorf("127.0.0.1 allowed: %d %s", status, body)
	}
}

// TestThink: think puts the thinking instruction in the prompt (the tiny
// model does not think, so there is no reasoning_content to return).
func TestThink(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma-text", Options{}, 4)
	_, plain, _ := ts.do(t, "POST", "/v1/chat/completions", greedy(userText("Hi"), nil))
	_, think, _ := ts.do(t, "POST", "/v1/chat/completions", greedy(userText("Hi"), map[string]any{"think": true}))
	p, th := parse(t, plain), parse(t, think)
	instruction := len(ts.m.Tokenizer().Encode(medgemma.ThinkingInstruction, false))
	if th.Usage.PromptTokens < p.Usage.PromptTokens+instruction || th.Choices[0].Message.ReasoningContent != nil {
		t.Errorf("think: %d prompt tokens (plain %d, instruction %d), reasoning %v", th.Usage.PromptTokens, p.Usage.PromptTokens, instruction, th.Choices[0].Message.ReasoningContent)
	}
}

// TestMetrics: after a few requests /metrics counts them, their tokens and
// their times, in Prometheus' text format.
func TestMetrics(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma-text", Options{}, 4)
	_, body, _ := ts.do(t, "POST", "/v1/chat/completions", greedy(userText("Hi"), nil))
	r := parse(t, body)
	ts.do(t, "POST", "/v1/chat/completions", "{")
	_, metrics, _ := ts.do(t, "GET", "/metrics", nil)
	for _, want := range []string{
		`medgemma_requests_total{endpoint="/v1/chat/completions",status="200"} 1`,
		`medgemma_requests_total{endpoint="/v1/chat/completions",status="400"} 1`,
		fmt.Sprintf("medgemma_prompt_tokens_total %d", r.Usage.PromptTokens),
		fmt.Sprintf("medgemma_generated_tokens_total %d", r.Usage.CompletionTokens),
		"medgemma_time_to_first_token_seconds_count 1", "medgemma_time_per_output_token_seconds_count 1",
		"medgemma_queue_depth 0", "medgemma_running_sequences 0", "medgemma_ready 1", "medgemma_kv_cache_bytes ",
		"# TYPE medgemma_time_to_first_token_seconds histogram", "go_goroutines ",
		`medgemma_kv_blocks{part="full",state="free"} `, `medgemma_kv_blocks{part="sliding",state="in_use"} 0`,
		`medgemma_kv_blocks{part="full",state="cached"} `, "medgemma_kv_block_tokens 16", "medgemma_kv_bytes_per_token ",
		"medgemma_prefix_cache_hit_tokens_total 0", "medgemma_preemptions_total 0", "medgemma_scheduler_steps_total ",
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
