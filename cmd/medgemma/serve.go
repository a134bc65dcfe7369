package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/server"
)

const serveUsage = `Usage:
  medgemma serve -m MODEL [--host 127.0.0.1] [--port 8080] [--api-key KEY] [flags]

Serves the model over OpenAI's API (POST /v1/chat/completions, POST
/v1/completions, GET /v1/models), with GET /health, /ready and /metrics
(Prometheus). The address answers at once; the API answers 503 until the
model is loaded, then one line is logged. Requests wait in a queue of
--max-queue (over it: 429 with Retry-After) and run one at a time. Images come
as data: URIs (PNG, JPEG, DICOM, ...), or from the --allow-image-hosts; never
from files. SIGINT or SIGTERM drains: /ready turns 503, running requests get
--grace to finish, then are cancelled; a second signal exits at once.
MEDGEMMA_API_KEY sets the key too. The sampling flags are the defaults of a
request that does not set them.

Flags:
`

// serveFlags are serve's own flags (beside the generation flags).
type serveFlags struct {
	host, apiKey, name, hosts, logFormat  string
	port, maxQueue, parallel, batchTokens int
	maxBody, kvMemory                     int64
	timeout, grace                        time.Duration
	logContent                            bool
}

func runServe(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", serveUsage, stderr)
	gf := addGenerationFlags(fs)
	var f serveFlags
	fs.StringVar(&f.host, "host", "127.0.0.1", "address to listen on (0.0.0.0: every interface)")
	fs.IntVar(&f.port, "port", 8080, "port to listen on (0: any free port)")
	fs.StringVar(&f.apiKey, "api-key", os.Getenv("MEDGEMMA_API_KEY"), "require this key as \"Authorization: Bearer KEY\" (default $MEDGEMMA_API_KEY)")
	fs.StringVar(&f.name, "served-model-name", "", "the model id clients name (default: the -m argument)")
	fs.StringVar(&f.hosts, "allow-image-hosts", "", "comma-separated `HOSTS` whose http(s) image URLs may be fetched (default: data: URIs only)")
	fs.IntVar(&f.maxQueue, "max-queue", medgemma.DefaultMaxQueue, "requests that may wait; more get 429")
	fs.IntVar(&f.parallel, "parallel", medgemma.DefaultParallel, "sequences decoded together (continuous batching)")
	fs.IntVar(&f.batchTokens, "batch-tokens", medgemma.DefaultBatchTokens, "tokens of one step: the next token of each running sequence, then prompt chunks")
	fs.Var(byteSize{&f.kvMemory}, "kv-memory", "`BYTES` of the KV cache, e.g. 4GB (default: what --ctx x --parallel needs)")
	fs.Int64Var(&f.maxBody, "max-body", server.DefaultMaxBody, "largest request body in bytes; larger get 413")
	fs.DurationVar(&f.timeout, "request-timeout", 10*time.Minute, "longest a request may take, queue included (0: none); longer get 504")
	fs.DurationVar(&f.grace, "grace", 30*time.Second, "on shutdown, how long running requests may finish before they are cancelled")
	fs.BoolVar(&f.logContent, "log-content", false, "log messages and answers (never logged otherwise)")
	fs.StringVar(&f.logFormat, "log-format", "text", "request log format: text or json")
	fs.Lookup("max-tokens").DefValue = strconv.Itoa(8192)
	gf.maxTokens = 8192 // a request that does not say may use MedGemma's whole output limit
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case gf.model == "":
		return usagef("-m MODEL is required")
	case len(pos) > 0:
		return usagef("unexpected argument %q", pos[0])
	case f.port < 0 || f.port > 65535:
		return usagef("--port must be in 0..65535")
	case f.maxQueue < 1:
		return usagef("--max-queue must be at least 1")
	case f.parallel < 1 || f.parallel > 256:
		return usagef("--parallel must be in 1..256")
	case f.batchTokens < f.parallel || f.batchTokens > 8192:
		return usagef("--batch-tokens must be in --parallel..8192")
	case f.maxBody < 1:
		return usagef("--max-body must be positive")
	case f.timeout < 0 || f.grace < 0:
		return usagef("--request-timeout and --grace must not be negative")
	case f.logFormat != "text" && f.logFormat != "json":
		return usagef("--log-format must be text or json")
	case gf.showThinking:
		return usagef("--show-thinking is for run and chat: the API returns the thought in reasoning_content")
	}
	st, err := gf.settings(fs, stderr)
	if err != nil {
		return err
	}
	st.load.Progress = nil
	var handler slog.Handler = slog.NewTextHandler(stderr, nil)
	if f.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, nil)
	}
	logger := slog.New(handler)
	name := f.name
	if name == "" {
		name = gf.model
	}
	sources := medgemma.ImageSources{} // data: URIs only: a request never reads a file
	for h := range strings.SplitSeq(f.hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			sources.Hosts = append(sources.Hosts, h)
		}
	}
	srv := server.New(server.Options{
		ModelName: name, APIKey: f.apiKey, MaxBody: f.maxBody, RequestTimeout: f.timeout, ImageSources: sources,
		Image: st.chat.Image, PanAndScan: st.chat.PanAndScan, PadSquare: st.chat.PadSquare, Context: st.chat.Context,
		Think: st.chat.Thinking, LogContent: f.logContent, Logger: logger,
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(f.host, strconv.Itoa(f.port)))
	if err != nil {
		return err
	}
	base, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	hs := &http.Server{Handler: srv.Handler(), BaseContext: func(net.Listener) context.Context { return base },
		// Headers must arrive in time (the body has its own deadline in
		// the server); responses, which stream, have --request-timeout.
		ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	addr := "http://" + ln.Addr().String()
	logger.Info("listening; loading the model", "address", addr, "model", gf.model)

	// The first SIGINT or SIGTERM stops loading, or drains; a second exits.
	stopping, stop := context.WithCancel(context.Background())
	defer stop()
	stopSignals := interrupts(func(n int) {
		if n == 1 {
			stop()
			return
		}
		fmt.Fprintln(stderr, "medgemma serve: interrupted again, exiting")
		exit(exitInterrupted)
	})
	defer stopSignals()

	m, err := medgemma.Load(stopping, gf.model, st.load)
	if err != nil {
		hs.Close()
		if stopping.Err() != nil {
			return errInterrupted
		}
		return err
	}
	defer m.Close()
	o, err := st.generation(m)
	if err != nil {
		hs.Close()
		return err
	}
	sched, err := medgemma.NewScheduler(m, medgemma.SchedulerOptions{MaxQueue: f.maxQueue, Parallel: f.parallel,
		BatchTokens: f.batchTokens, Context: st.chat.Context, KVMemory: f.kvMemory})
	if err != nil {
		hs.Close()
		return err
	}
	srv.Ready(m, sched, o)
	so := sched.Options()
	logger.Info("ready", "address", addr, "model", name, "context", so.Context, "parallel", so.Parallel, "batch_tokens", so.BatchTokens,
		"kv_bytes_per_token", sched.BytesPerToken(), "kv_blocks", sched.Stats().Pool.Full.Max, "weights", m.Weights(), "tokenizer", m.TokenizerSource())
	fmt.Fprintf(stdout, "medgemma serve: ready on %s (model %s, context %d)\n", addr, name, so.Context)

	select {
	case err := <-served:
		sched.Close()
		return fmt.Errorf("serving: %w", err)
	case <-stopping.Done():
	}
	// Drain: /ready and new requests answer 503 while what was taken
	// finishes, within the grace; then what is left is cancelled.
	logger.Info("draining", "grace", f.grace.String())
	srv.Drain()
	sched.Close()
	graceCtx, cancelGrace := context.WithTimeout(context.Background(), f.grace)
	defer cancelGrace()
	if err := sched.Wait(graceCtx); err != nil {
		logger.Info("grace over: cancelling the requests still running")
		cancelAll()
		done, cancelDone := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancelDone()
		if err := sched.Wait(done); err != nil {
			hs.Close()
			return errors.New("requests did not stop within 30 s of being cancelled")
		}
	}
	// The handlers write their last bytes; then the connections close.
	closing, cancelClosing := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelClosing()
	if err := hs.Shutdown(closing); err != nil {
		hs.Close()
	}
	logger.Info("stopped")
	return nil
}

// byteSize is a flag of bytes: a number with an optional unit (KB, MB, GB,
// KiB, MiB, GiB).
type byteSize struct{ v *int64 }

func (b byteSize) String() string {
	if b.v == nil || *b.v == 0 {
		return ""
	}
	return strconv.FormatInt(*b.v, 10)
}

func (b byteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	mul := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mul = strings.TrimSpace(rest), u.mul
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || n*float64(mul) > 1<<50 {
		return errors.New("want a size such as 4GB or 512MiB")
	}
	*b.v = int64(n * float64(mul))
	return nil
}
