package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoad: 32 concurrent clients send 200 requests, streamed or not, a
// fifth of them cancelled after their first chunk (streams) or at once
// (others, while they wait or run). Every request
// ends with a complete answer, a 429 or the client's cancellation; then no
// goroutine is left over and the heap is back near where it started.
func TestLoad(t *testing.T) {
	ts := newTestServer(t, "tiny-medgemma-text", Options{}, 8)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()

	var next, complete, refused, cancelled atomic.Int32
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= 200 {
					return
				}
				stream, cancel := i%2 == 0, i%5 == 0
				// A refused request tries again a few times, briefly (a
				// client would wait for Retry-After).
				res := "429"
				for try := 0; try < 10 && res == "429"; try++ {
					if try > 0 {
						time.Sleep(time.Duration(10+c) * time.Millisecond)
					}
					res = sendOne(t, client, ts.url, i, c, stream, cancel)
				}
				switch res {
				case "complete":
					complete.Add(1)
				case "429":
					refused.Add(1)
				case "cancelled":
					cancelled.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	total := complete.Load() + refused.Load() + cancelled.Load()
	t.Logf("200 requests: %d complete, %d refused (429), %d cancelled", complete.Load(), refused.Load(), cancelled.Load())
	if total != 200 || complete.Load() == 0 || refused.Load() == 0 {
		t.Errorf("%d of 200 requests ended as expected", total)
	}
	client.CloseIdleConnections()
	waitFor(t, func() bool { return ts.sched.Running() == 0 && ts.sched.Queued() == 0 })
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left over (%d before):\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 64<<20 {
		t.Errorf("the heap grew by %d MB", grew>>20)
	}
}

// sendOne sends request i and says how it ended: complete, 429, cancelled,
// or a description of what went wrong.
func sendOne(t *testing.T, client *http.Client, url string, i, c int, stream, cancel bool) string {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	body, _ := json.Marshal(greedy(userText(strings.Repeat("word ", i%7+1)), map[string]any{"max_tokens": 4, "stream": stream, "temperature": 0.5, "seed": i}))
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", bytes.NewReader(body))
	if cancel && !stream {
		time.AfterFunc(time.Duration(i%4)*5*time.Millisecond, stop)
	}
	resp, err := client.Do(req)
	if err != nil {
		if cancel && ctx.Err() != nil {
			return "cancelled"
		}
		t.Errorf("request %d: %v", i, err)
		return "error"
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "":
		io.Copy(io.Discard, resp.Body)
		return "429"
	case resp.StatusCode != 200:
		data, _ := io.ReadAll(resp.Body)
		t.Errorf("request %d: %d %s", i, resp.StatusCode, data)
		return "error"
	case !stream:
		var r chatResult
		err := json.NewDecoder(resp.Body).Decode(&r)
		if cancel && ctx.Err() != nil {
			return "cancelled"
		}
		if err != nil || len(r.Choices) != 1 || r.Choices[0].FinishReason == nil {
			t.Errorf("request %d: %v %+v", i, err, r)
			return "error"
		}
		return "complete"
	}
	br := bufio.NewReader(resp.Body)
	for chunks := 0; ; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Errorf("stream %d ended without [DONE]: %v", i, err)
			return "error"
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if line == "data: [DONE]" {
			return "complete"
		}
		if chunks++; cancel && chunks == 1 {
			stop()
			return "cancelled"
		}
	}
}
