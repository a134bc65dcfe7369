package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/medgemma/medgemma/loadgen"
)

const loadgenUsage = `Usage:
  medgemma loadgen --url URL [--concurrency N] [--requests N] [--prompt-tokens N]
                   [--max-tokens N] [--image FILE] [--api-key KEY] [--json]

Sends streamed chat requests to an OpenAI-compatible server ("medgemma
serve", vLLM, llama.cpp's server), --concurrency at a time, and reports the
output throughput (every answer's tokens over the wall time), time to first
token, time per output token after it and latency (mean, p50, p90, p99).
No two questions share their first KV block, within a run or with another
run (nothing is reused from the prefix cache; --seed repeats a run's); answers are greedy and, with --ignore-eos (the default),
--max-tokens long.

Flags:
`

func runLoadgen(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("loadgen", loadgenUsage, stderr)
	var o loadgen.Options
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8080", "the server's base `URL`")
	fs.StringVar(&o.APIKey, "api-key", os.Getenv("MEDGEMMA_API_KEY"), "API `KEY` (default $MEDGEMMA_API_KEY)")
	fs.StringVar(&o.Model, "model", "", "model `NAME` (default: the first the server lists)")
	fs.IntVar(&o.Concurrency, "concurrency", 1, "requests in flight at once")
	fs.IntVar(&o.Requests, "requests", 0, "requests in all (default 4 x concurrency)")
	fs.IntVar(&o.PromptTokens, "prompt-tokens", 128, "tokens of each question (the chat template adds a few)")
	fs.IntVar(&o.MaxTokens, "max-tokens", 64, "max_tokens of each answer")
	fs.BoolVar(&o.IgnoreEOS, "ignore-eos", true, "ask for max_tokens whatever the model says (ignore_eos)")
	image := fs.String("image", "", "send image `FILE` with every request")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "bound on each request")
	fs.Uint64Var(&o.Seed, "seed", 0, "pick the prompts from `N` (default random: no prefix shared with another run)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if o.Requests == 0 {
		o.Requests = 4 * o.Concurrency
	}
	switch {
	case o.Concurrency < 1 || o.Concurrency > loadgen.MaxConcurrency:
		return usagef("--concurrency %d: want 1..%d", o.Concurrency, loadgen.MaxConcurrency)
	case o.Requests < 1 || o.Requests > loadgen.MaxRequests:
		return usagef("--requests %d: want 1..%d", o.Requests, loadgen.MaxRequests)
	case o.PromptTokens < 1 || o.PromptTokens > loadgen.MaxPromptTokens:
		return usagef("--prompt-tokens %d: want 1..%d", o.PromptTokens, loadgen.MaxPromptTokens)
	case o.MaxTokens < 1 || o.MaxTokens > loadgen.MaxTokens:
		return usagef("--max-tokens %d: want 1..%d", o.MaxTokens, loadgen.MaxTokens)
	case o.Timeout <= 0:
		return usagef("--timeout must be positive")
	}
	if *image != "" {
		st, err := os.Stat(*image)
		switch {
		case err != nil:
			return err
		case !st.Mode().IsRegular():
			return usagef("--image %s is not a file", *image)
		case st.Size() > 64<<20:
			return usagef("--image %s is %d bytes; at most 64 MiB", *image, st.Size())
		}
		if o.Image, err = os.ReadFile(*image); err != nil {
			return err
		}
		o.ImageType = imageType(o.Image)
	}
	if !*quiet {
		o.Log = func(format string, a ...any) { fmt.Fprintf(stderr, "loadgen: "+format+"\n", a...) }
	}
	ctx, stop := interruptible(context.Background(), stderr)
	defer stop()
	r, err := loadgen.Run(ctx, o)
	if err != nil {
		return interruptedErr(ctx, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	ok := r.Requests - r.Failed
	fmt.Fprintf(stdout, "%-17s %s (%s)\n", "server", r.URL, r.Model)
	fmt.Fprintf(stdout, "%-17s %d succeeded, %d failed, %d at a time, in %.2f s\n", "requests", ok, r.Failed, r.Concurrency, r.Seconds)
	if r.Failed > 0 {
		fmt.Fprintf(stdout, "%-17s %s\n", "first error", r.FirstError)
	}
	fmt.Fprintf(stdout, "%-17s %.1f prompt (%.1f cached), %.1f generated per request\n", "tokens",
		float64(r.PromptTokens)/float64(ok), float64(r.CachedTokens)/float64(ok), float64(r.CompletionTokens)/float64(ok))
	fmt.Fprintf(stdout, "%-17s %.2f tokens/s, %.3f requests/s\n", "throughput", r.OutputTokensPerS, r.RequestsPerS)
	ms := func(s loadgen.Stats) string {
		return fmt.Sprintf("mean %.0f, p50 %.0f, p90 %.0f, p99 %.0f, max %.0f ms", 1000*s.Mean, 1000*s.P50, 1000*s.P90, 1000*s.P99, 1000*s.Max)
	}
	fmt.Fprintf(stdout, "%-17s %s\n", "ttft", ms(r.TTFT))
	fmt.Fprintf(stdout, "%-17s %s\n", "tpot", ms(r.TPOT))
	fmt.Fprintf(stdout, "%-17s %s\n", "latency", ms(r.Latency))
	return nil
}

// imageType names an image's media type for its data: URI.
func imageType(b []byte) string {
	if len(b) >= 132 && string(b[128:132]) == "DICM" {
		return "application/dicom"
	}
	return http.DetectContentType(b)
}
