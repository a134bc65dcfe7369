// Package loadgen drives an OpenAI-compatible server (medgemma serve, vLLM,
// llama.cpp's server) with concurrent streamed chat requests and measures
// what its users feel: output throughput, time to first token (TTFT), time
// per output token after it (TPOT) and latency, as percentiles. It is the
// client side of the server's batching: the numbers say what a batch of N
// concurrent streams gets against one.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options say what load to send.
type Options struct {
	// URL is the server's base URL (http://host:port, with or without /v1).
	URL    string
	APIKey string
	// Model is the model to name; "" asks /v1/models for the first.
	Model string
	// Concurrency is how many requests are in flight at once; Requests how
	// many are sent in all.
	Concurrency, Requests int
	// PromptTokens is the length of each question in Gemma's tokens (the
	// chat template adds its own; the usage the server reports is what
	// counts). No two questions share their first block.
	PromptTokens int
	// MaxTokens is each answer's max_tokens; with IgnoreEOS the server
	// generates all of them (vLLM's and llama.cpp's ignore_eos).
	MaxTokens int
	IgnoreEOS bool
	// Image, when set, is sent with every request as a data: URI of type
	// ImageType.
	Image     []byte
	ImageType string
	// Seed picks the prompts: runs with different seeds share no prefix
	// (0: a random seed).
	Seed uint64
	// Timeout bounds each request (0: 10 minutes).
	Timeout time.Duration
	// Client makes the requests (nil: a client of its own).
	Client *http.Client
	Log    func(format string, args ...any)
}

// Result is what was measured; times in seconds.
type Result struct {
	URL         string `json:"url"`
	Model       string `json:"model"`
	Concurrency int    `json:"concurrency"`
	Requests    int    `json:"requests"`
	Failed      int    `json:"failed"`
	FirstError  string `json:"first_error,omitempty"`
	// Seconds is the wall time from the first request to the last answer.
	Seconds          float64 `json:"duration_s"`
	PromptTokens     int     `json:"prompt_tokens"`
	CachedTokens     int     `json:"cached_prompt_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	// OutputTokensPerS is every answer's tokens over the wall time: the
	// server's throughput.
	OutputTokensPerS float64 `json:"output_tokens_per_s"`
	RequestsPerS     float64 `json:"requests_per_s"`
	TTFT             Stats   `json:"ttft_s"`
	TPOT             Stats   `json:"tpot_s"`
	Latency          Stats   `json:"latency_s"`
}

// Stats summarize one measure over the requests that succeeded.
type Stats struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// Limits on the options.
const (
	MaxConcurrency  = 1024
	MaxRequests     = 1 << 20
	MaxPromptTokens = 1 << 20
	MaxTokens       = 8192
	// maxEvent bounds one Server-Sent Event line read from the server.
	maxEvent = 4 << 20
)

// sample is one request's measurements.
type sample struct {
	ttft, latency            time.Duration
	prompt, cached, complete int
	err                      error
}

// Run sends the load and measures it. A request that fails is counted
// (Failed, FirstError) and left out of the times; Run fails only when none
// succeeds, or ctx ends.
func Run(ctx context.Context, o Options) (*Result, error) {
	switch {
	case o.Concurrency < 1 || o.Concurrency > MaxConcurrency:
		return nil, fmt.Errorf("concurrency %d: want 1..%d", o.Concurrency, MaxConcurrency)
	case o.Requests < 1 || o.Requests > MaxRequests:
		return nil, fmt.Errorf("requests %d: want 1..%d", o.Requests, MaxRequests)
	case o.PromptTokens < 1 || o.PromptTokens > MaxPromptTokens:
		return nil, fmt.Errorf("prompt tokens %d: want 1..%d", o.PromptTokens, MaxPromptTokens)
	case o.MaxTokens < 1 || o.MaxTokens > MaxTokens:
		return nil, fmt.Errorf("max tokens %d: want 1..%d", o.MaxTokens, MaxTokens)
	case len(o.Image) > 0 && !strings.HasPrefix(o.ImageType, "image/") && o.ImageType != "application/dicom":
		return nil, fmt.Errorf("image type %q: want image/... or application/dicom", o.ImageType)
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64() | 1
	}
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency, ResponseHeaderTimeout: o.Timeout}}
	}
	base := strings.TrimSuffix(strings.TrimSuffix(o.URL, "/"), "/v1")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("url %q: want http://host:port", o.URL)
	}
	c := &client{o: o, base: base + "/v1"}
	if c.o.Model == "" {
		m, err := c.firstModel(ctx)
		if err != nil {
			return nil, err
		}
		c.o.Model = m
	}
	logf("%d requests to %s (%s), %d at a time, questions of %d tokens, up to %d tokens each",
		o.Requests, c.base, c.o.Model, o.Concurrency, o.PromptTokens, o.MaxTokens)
	samples := make([]sample, o.Requests)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range o.Concurrency {
		wg.Go(func() {
			for i := range next {
				samples[i] = c.chat(ctx, i)
			}
		})
	}
feed:
	for i := range o.Requests {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return summarize(c.o, samples, time.Since(start))
}

func summarize(o Options, samples []sample, took time.Duration) (*Result, error) {
	r := &Result{URL: o.URL, Model: o.Model, Concurrency: o.Concurrency, Requests: len(samples), Seconds: took.Seconds()}
	var ttft, tpot, latency []float64
	for _, s := range samples {
		if s.err != nil {
			if r.Failed == 0 {
				r.FirstError = s.err.Error()
			}
			r.Failed++
			continue
		}
		r.PromptTokens += s.prompt
		r.CachedTokens += s.cached
		r.CompletionTokens += s.complete
		ttft = append(ttft, s.ttft.Seconds())
		latency = append(latency, s.latency.Seconds())
		if s.complete > 1 {
			tpot = append(tpot, (s.latency-s.ttft).Seconds()/float64(s.complete-1))
		}
	}
	if r.Failed == len(samples) {
		return r, fmt.Errorf("all %d requests failed; the first: %s", r.Failed, r.FirstError)
	}
	r.OutputTokensPerS = float64(r.CompletionTokens) / took.Seconds()
	r.RequestsPerS = float64(len(samples)-r.Failed) / took.Seconds()
	r.TTFT, r.TPOT, r.Latency = statsOf(ttft), statsOf(tpot), statsOf(latency)
	return r, nil
}

// statsOf summarizes values (nearest-rank percentiles).
func statsOf(v []float64) Stats {
	if len(v) == 0 {
		return Stats{}
	}
	slices.Sort(v)
	var sum float64
	for _, x := range v {
		sum += x
	}
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(v)))) - 1
		return v[min(max(i, 0), len(v)-1)]
	}
	return Stats{Mean: sum / float64(len(v)), P50: rank(0.5), P90: rank(0.9), P99: rank(0.99), Max: v[len(v)-1]}
}

type client struct {
	o    Options
	base string
}

func (c *client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.o.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.o.APIKey)
	}
	resp, err := c.o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// firstModel asks the server which model it serves.
func (c *client) firstModel(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, "/models", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&list); err != nil {
		return "", fmt.Errorf("GET /models: %w", err)
	}
	if len(list.Data) == 0 || list.Data[0].ID == "" {
		return "", errors.New("GET /models lists no model")
	}
	return list.Data[0].ID, nil
}

// words make up the prompts: each is one token of Gemma's vocabulary
// after a space (tested), so a prompt of n words is n tokens.
var words = strings.Fields(`patient presents with chest pain shortness of breath fever cough
history hypertension diabetes smoking film shows opacity lower lobe right left
consolidation effusion mass normal heart size clear lungs no acute findings
recommend follow up imaging laboratory results white blood cell count elevated
examination reveals tenderness swelling lesion margin density scan bone`)

// prompt is request i's question of n tokens: "Case", two words for the
// run (from its seed) and i in four words (base len(words)), so that no two
// prompts of a run, nor of runs with different seeds, share a prefix as long
// as a KV block; then words drawn from a generator seeded by the seed and i.
func prompt(seed uint64, i, n int) string {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	nw := uint64(len(words))
	id := []int{int(seed % nw), int(seed / nw % nw)}
	for range 4 {
		id = append(id, i%len(words))
		i /= len(words)
	}
	var b strings.Builder
	b.WriteString("Case")
	for k := 1; k < n; k++ {
		w := words[rng.IntN(len(words))]
		if k <= len(id) {
			w = words[id[k-1]]
		}
		b.WriteByte(' ')
		b.WriteString(w)
	}
	return b.String()
}

// chat sends request i, streamed, and times it.
func (c *client) chat(ctx context.Context, i int) sample {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	var content any = prompt(c.o.Seed, i, c.o.PromptTokens)
	if len(c.o.Image) > 0 {
		content = []map[string]any{
			{"type": "image_url", "image_url": map[string]string{"url": "data:" + c.o.ImageType + ";base64," + base64.StdEncoding.EncodeToString(c.o.Image)}},
			{"type": "text", "text": content},
		}
	}
	body := map[string]any{
		"model": c.o.Model, "messages": []map[string]any{{"role": "user", "content": content}},
		"max_tokens": c.o.MaxTokens, "temperature": 0, "stream": true, "stream_options": map[string]bool{"include_usage": true},
	}
	if c.o.IgnoreEOS {
		body["ignore_eos"] = true
	}
	start := time.Now()
	resp, err := c.do(ctx, http.MethodPost, "/chat/completions", body)
	if err != nil {
		return sample{err: err}
	}
	defer resp.Body.Close()
	s := sample{}
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := readLine(rd)
		if err != nil {
			return sample{err: fmt.Errorf("request %d: reading the stream: %w", i, err)}
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue // blank lines between events, comments
		}
		if data == "[DONE]" {
			break
		}
		var ev struct {
			Choices []struct {
				Delta struct {
					Content          string `json:"content"`
					ReasoningContent string `json:"reasoning_content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				PromptTokens        int `json:"prompt_tokens"`
				CompletionTokens    int `json:"completion_tokens"`
				PromptTokensDetails *struct {
					CachedTokens int `json:"cached_tokens"`
				} `json:"prompt_tokens_details"`
			} `json:"usage"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return sample{err: fmt.Errorf("request %d: an event that is not JSON: %w", i, err)}
		}
		if ev.Error != nil {
			return sample{err: fmt.Errorf("request %d: %s", i, ev.Error.Message)}
		}
		for _, ch := range ev.Choices {
			if s.ttft == 0 && (ch.Delta.Content != "" || ch.Delta.ReasoningContent != "") {
				s.ttft = time.Since(start)
			}
		}
		if u := ev.Usage; u != nil {
			s.prompt, s.complete = u.PromptTokens, u.CompletionTokens
			if u.PromptTokensDetails != nil {
				s.cached = u.PromptTokensDetails.CachedTokens
			}
		}
	}
	s.latency = time.Since(start)
	if s.ttft == 0 {
		s.ttft = s.latency // nothing but empty text
	}
	return s
}

// readLine reads one line of at most maxEvent bytes, without its newline.
func readLine(rd *bufio.Reader) (string, error) {
	var b []byte
	for {
		part, isPrefix, err := rd.ReadLine()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the stream ended before [DONE]
			}
			return "", err
		}
		b = append(b, part...)
		if len(b) > maxEvent {
			return "", fmt.Errorf("an event of over %d bytes", maxEvent)
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}
