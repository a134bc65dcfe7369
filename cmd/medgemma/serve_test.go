package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
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
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit")
	}
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
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit")
	}
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
