package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medgemma/medgemma/internal/testenv"
)

// startServe runs `medgemma serve` in-process on a free port and returns its
// address and a channel with its exit code.
func startServe(t *testing.T, args ...string) (string, chan int) {
	t.Helper()
	tok := filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")
	dir := filepath.Join("..", "..", "testdata", "models", "tiny-medgemma-text")
	pr, pw := io.Pipe()
	var errs bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- run(append([]string{"serve", "-m", dir, "--tokenizer", tok, "--port", "0", "--served-model-name", "tiny"}, args...), nil, pw, &errs)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no ready line: %v; stderr %s", err, errs.String())
	}
	go io.Copy(io.Discard, pr)
	_, addr, ok := strings.Cut(line, "ready on ")
	addr, _, _ = strings.Cut(addr, " ")
	if !ok || !strings.HasPrefix(addr, "http://127.0.0.1:") {
		t.Fatalf("ready line %q", line)
	}
	return addr, code
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// streamRequest starts a streamed chat and returns its reader after the
// first chunk.
func streamRequest(t *testing.T, addr string, maxTokens int) (*bufio.Reader, func()) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": "tiny", "messages": []map[string]string{{"role": "user", "content": "Report"}},
		"max_tokens": maxTokens, "temperature": 0, "stream": true})
	resp, err := http.Post(addr+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", err, resp)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	return br, func() { resp.Body.Close() }
}

// TestServeDrains: SIGTERM makes /ready and new requests answer 503 while
// a running stream finishes within the grace; then serve exits 0.
func TestServeDrains(t *testing.T) {
	addr, code := startServe(t, "--grace", "60s")
	if get(t, addr+"/ready") != 200 || get(t, addr+"/health") != 200 {
		t.Fatal("not ready")
	}
	br, closeBody := streamRequest(t, addr, 40)
	defer closeBody()
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for get(t, addr+"/ready") != 503 {
		if time.Now().After(deadline) {
			t.Fatal("/ready did not turn 503")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := http.Post(addr+"/v1/chat/completions", "application/json", strings.NewReader(`{"messages": [{"role": "user", "content": "x"}]}`))
	if err != nil || resp.StatusCode != 503 {
		t.Errorf("a new request while draining: %v %v", err, resp)
	}
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), `"finish_reason":"length"`) || !strings.HasSuffix(strings.TrimSpace(string(rest)), "data: [DONE]") {
		t.Errorf("the running stream did not finish: %s", rest)
	}
	waitExit(t, code)
}

// TestServeGraceOver: a request still running when the grace is over is
// cancelled, and serve exits 0.
func TestServeGraceOver(t *testing.T) {
	addr, code := startServe(t, "--grace", "100ms")
	br, closeBody := streamRequest(t, addr, 8000)
	defer closeBody()
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	rest, _ := io.ReadAll(br)
	if strings.Contains(string(rest), "[DONE]") {
		t.Errorf("an 8000-token stream finished within a 100 ms grace")
	}
	waitExit(t, code)
}

func TestServeFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "-m MODEL is required"},
		{[]string{"serve", "-m", "x", "--max-queue", "0"}, "--max-queue must be at least 1"},
		{[]string{"serve", "-m", "x", "--port", "70000"}, "--port must be in 0..65535"},
		{[]string{"serve", "-m", "x", "--log-format", "xml"}, "--log-format must be text or json"},
		{[]string{"serve", "-m", "x", "--show-thinking"}, "reasoning_content"},
		{[]string{"serve", "-m", "x", "--temperature", "nan"}, "temperature must be a finite number"},
		{[]string{"serve", "-m", "x", "extra"}, `unexpected argument "extra"`},
	} {
		_, errs, code := runCLI(t, "", c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
}

// answer is what a chat request got: its text and each token's logprob.
type answer struct {
	text     string
	tokens   []string
	logprobs []float64
}

// chatOnce sends a chat request, streamed or whole, and reads its answer.
func chatOnce(t *testing.T, addr string, body map[string]any, stream bool) answer {
	t.Helper()
	b := map[string]any{"stream": stream}
	for k, v := range body {
		b[k] = v
	}
	data, _ := json.Marshal(b)
	resp, err := http.Post(addr+"/v1/chat/completions", "application/json", bytes.NewReader(data))
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("%d %s", resp.StatusCode, raw)
		return answer{}
	}
	type choice struct {
		Message, Delta struct {
			Content string `json:"content"`
		}
		Logprobs *struct {
			Content []struct {
				Token   string  `json:"token"`
				Logprob float64 `json:"logprob"`
			} `json:"content"`
		} `json:"logprobs"`
	}
	var a answer
	add := func(c choice) {
		a.text += c.Message.Content + c.Delta.Content
		if c.Logprobs != nil {
			for _, lp := range c.Logprobs.Content {
				a.tokens = append(a.tokens, lp.Token)
				a.logprobs = append(a.logprobs, lp.Logprob)
			}
		}
	}
	payloads := []string{string(raw)}
	if stream {
		payloads = nil
		for _, line := range strings.Split(string(raw), "\n") {
			if p, ok := strings.CutPrefix(line, "data: "); ok && p != "[DONE]" {
				payloads = append(payloads, p)
			}
		}
	}
	for _, p := range payloads {
		var r struct{ Choices []choice }
		if err := json.Unmarshal([]byte(p), &r); err != nil {
			t.Errorf("%v: %s", err, p)
		}
		for _, c := range r.Choices {
			add(c)
		}
	}
	return a
}

// TestServeBatchesExactly: through `medgemma serve`, requests of different
// prompts, lengths and sampling, sent together in random orders and at
// random moments (so that they are batched, prefilled in chunks beside
// each other's decoding, and queued past --parallel), each get the answer
// they get alone: the same text and tokens, logprobs within 1e-4. Then
// `medgemma loadgen` measures the server and counts every token.
func TestServeBatchesExactly(t *testing.T) {
	addr, code := startServe(t, "--parallel", "3", "--batch-tokens", "24", "--max-queue", "32")
	var reqs []map[string]any
	for i := range 8 {
		body := map[string]any{"model": "tiny", "max_tokens": 4 + i%5, "logprobs": true,
			"messages": []map[string]string{{"role": "user", "content": "Case " + strings.Repeat("chest pain ", 1+3*i) + "report"}}}
		if i%2 == 1 {
			body["temperature"], body["seed"], body["top_k"] = 1, 100+i, 40
		} else {
			body["temperature"] = 0
		}
		reqs = append(reqs, body)
	}
	alone := make([]answer, len(reqs))
	for i, r := range reqs {
		alone[i] = chatOnce(t, addr, r, false)
		if len(alone[i].tokens) == 0 {
			t.Fatalf("request %d alone: no tokens", i)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 3 {
		got := make([]answer, len(reqs))
		var wg sync.WaitGroup
		for _, i := range rng.Perm(len(reqs)) {
			delay := time.Duration(rng.IntN(20)) * time.Millisecond
			stream := rng.IntN(2) == 0
			wg.Go(func() {
				time.Sleep(delay)
				got[i] = chatOnce(t, addr, reqs[i], stream)
			})
		}
		wg.Wait()
		for i, g := range got {
			ok := g.text == alone[i].text && slices.Equal(g.tokens, alone[i].tokens)
			for k := range min(len(g.logprobs), len(alone[i].logprobs)) {
				ok = ok && math.Abs(g.logprobs[k]-alone[i].logprobs[k]) <= 1e-4
			}
			if !ok {
				t.Errorf("round %d, request %d: %q %v, alone %q %v", round, i, g.text, g.logprobs, alone[i].text, alone[i].logprobs)
			}
		}
	}
	// Alone, a request takes a step per token at least; batched, fewer.
	steps, generated := metric(t, addr, "medgemma_scheduler_steps_total"), metric(t, addr, "medgemma_generated_tokens_total")
	if steps <= 0 || steps >= generated {
		t.Errorf("%v steps for %v tokens: the requests were not batched", steps, generated)
	}
	out, errs, c := runCLI(t, "", "loadgen", "--url", addr, "--concurrency", "3", "--requests", "5", "--prompt-tokens", "10", "--max-tokens", "3", "--json", "--quiet")
	var r struct {
		Requests         int `json:"requests"`
		Failed           int `json:"failed"`
		CompletionTokens int `json:"completion_tokens"`
		TTFT             struct {
			P50 float64 `json:"p50"`
		} `json:"ttft_s"`
	}
	if err := json.Unmarshal([]byte(out), &r); c != 0 || err != nil || r.Requests != 5 || r.Failed != 0 || r.CompletionTokens != 15 || r.TTFT.P50 <= 0 {
		t.Errorf("loadgen: exit %d, %v, %+v, stderr %s", c, err, r, errs)
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	waitExit(t, code)
}

// metric reads one series of the server's /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get(addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// waitExit waits for serve to exit 0.
func waitExit(t *testing.T, code chan int) {
	t.Helper()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit")
	}
}
