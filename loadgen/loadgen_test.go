package loadgen_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/internal/testenv"
	"github.com/medgemma/medgemma/loadgen"
	"github.com/medgemma/medgemma/server"
)

// serve starts medgemma's server over a tiny checkpoint on loopback.
func serve(t *testing.T, name, key string) string {
	t.Helper()
	m, err := medgemma.Load(context.Background(), filepath.Join("..", "testdata", "models", name),
		medgemma.LoadOptions{Tokenizer: filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := medgemma.NewScheduler(m, medgemma.SchedulerOptions{Parallel: 4, Context: 1024})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{ModelName: "tiny", APIKey: key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv.Ready(m, sched, m.Defaults())
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		sched.Close()
		m.Close()
	})
	return hs.URL
}

// TestRun: concurrent streams against the server, every one counted: the
// tokens the server reports (max_tokens each, with ignore_eos), times in
// order (p50 <= p90 <= p99 <= max, first token before the last).
func TestRun(t *testing.T) {
	url := serve(t, "tiny-medgemma-text", "")
	o := loadgen.Options{URL: url + "/v1", Concurrency: 3, Requests: 7, PromptTokens: 20, MaxTokens: 5, IgnoreEOS: true, Timeout: time.Minute}
	r, err := loadgen.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Model != "tiny" || r.Requests != 7 || r.Failed != 0 || r.CompletionTokens != 7*5 || r.PromptTokens < 7*20 || r.Concurrency != 3 {
		t.Errorf("result %+v", r)
	}
	for name, s := range map[string]loadgen.Stats{"ttft": r.TTFT, "tpot": r.TPOT, "latency": r.Latency} {
		if !(s.P50 > 0 && s.P50 <= s.P90 && s.P90 <= s.P99 && s.P99 <= s.Max && s.Mean > 0 && s.Mean <= s.Max) {
			t.Errorf("%s: %+v", name, s)
		}
	}
	if r.TTFT.Max > r.Latency.Max || r.OutputTokensPerS <= 0 || r.RequestsPerS <= 0 || r.Seconds <= 0 {
		t.Errorf("result %+v", r)
	}
}

// TestRunImage: an image goes with every request (its soft tokens in the
// prompt's count).
func TestRunImage(t *testing.T) {
	url := serve(t, "tiny-medgemma", "")
	img, err := os.ReadFile(filepath.Join("..", "imageproc", "testdata", "images", "tiny_rgb_20x30.png"))
	if err != nil {
		t.Fatal(err)
	}
	o := loadgen.Options{URL: url, Concurrency: 2, Requests: 2, PromptTokens: 3, MaxTokens: 2, IgnoreEOS: true, Image: img, ImageType: "image/png"}
	r, err := loadgen.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	text, err := loadgen.Run(context.Background(), loadgen.Options{URL: url, Concurrency: 2, Requests: 2, PromptTokens: 3, MaxTokens: 2, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed != 0 || r.CompletionTokens != 4 || r.PromptTokens < text.PromptTokens+2*16 {
		t.Errorf("with an image: %+v; without: %+v", r, text)
	}
}

// TestRunFailures: refused requests are counted and the first error kept;
// when none succeeds, Run says so.
func TestRunFailures(t *testing.T) {
	url := serve(t, "tiny-medgemma-text", "sekret")
	_, err := loadgen.Run(context.Background(), loadgen.Options{URL: url, Concurrency: 2, Requests: 3, PromptTokens: 3, MaxTokens: 2})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("no key, no model named: %v", err)
	}
	r, err := loadgen.Run(context.Background(), loadgen.Options{URL: url, Model: "tiny", Concurrency: 2, Requests: 3, PromptTokens: 3, MaxTokens: 2})
	if err == nil || r == nil || r.Failed != 3 || !strings.Contains(r.FirstError, "401") {
		t.Errorf("no key: %+v, %v", r, err)
	}
	for _, o := range []loadgen.Options{
		{URL: url, Concurrency: 0, Requests: 1, PromptTokens: 1, MaxTokens: 1},
		{URL: url, Concurrency: 1, Requests: 1, PromptTokens: 1, MaxTokens: loadgen.MaxTokens + 1},
		{URL: "ftp://x", Concurrency: 1, Requests: 1, PromptTokens: 1, MaxTokens: 1},
		{URL: url, Concurrency: 1, Requests: 1, PromptTokens: 1, MaxTokens: 1, Image: []byte("x"), ImageType: "text/plain"},
	} {
		if _, err := loadgen.Run(context.Background(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	// A server that is not there fails each request, bounded in time.
	r, err = loadgen.Run(context.Background(), loadgen.Options{URL: "http://127.0.0.1:1", Model: "x", Concurrency: 1, Requests: 2, PromptTokens: 1, MaxTokens: 1, Timeout: 5 * time.Second})
	if err == nil || r.Failed != 2 {
		t.Errorf("no server: %+v, %v", r, err)
	}
}
