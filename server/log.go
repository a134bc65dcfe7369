package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// requestLog is what a handler adds to its request's log line.
type requestLog struct {
	promptTokens, completionTokens, reusedTokens int
	imagesEncoded, imagesCached                  int
	ttft                                         time.Duration
	finishReason, errMessage                     string
	stream                                       bool
	content                                      []any // with LogContent: the messages and the answer
}

type logKey struct{}

// logOf returns the request's log record (a throwaway one outside Handler).
func logOf(ctx context.Context) *requestLog {
	if rec, ok := ctx.Value(logKey{}).(*requestLog); ok {
		return rec
	}
	return &requestLog{}
}

// logRequest writes the request's one line: never the content unless
// LogContent.
func (s *Server) logRequest(r *http.Request, status int, took time.Duration, rec *requestLog) {
	attrs := []any{
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000), slog.String("remote", r.RemoteAddr),
	}
	if rec.promptTokens > 0 {
		attrs = append(attrs, slog.Int("prompt_tokens", rec.promptTokens), slog.Int("completion_tokens", rec.completionTokens),
			slog.Int("reused_tokens", rec.reusedTokens), slog.String("finish_reason", rec.finishReason), slog.Bool("stream", rec.stream))
	}
	if rec.imagesEncoded+rec.imagesCached > 0 {
		attrs = append(attrs, slog.Int("images_encoded", rec.imagesEncoded), slog.Int("images_cached", rec.imagesCached))
	}
	if rec.ttft > 0 {
		attrs = append(attrs, slog.Float64("ttft_ms", float64(rec.ttft.Microseconds())/1000))
	}
	if rec.errMessage != "" {
		attrs = append(attrs, slog.String("error", rec.errMessage))
	}
	if s.opts.LogContent {
		attrs = append(attrs, rec.content...)
	}
	level := slog.LevelInfo
	if status >= 500 && status != 503 && status != 504 {
		level = slog.LevelError
	}
	s.log.LogAttrs(context.Background(), level, "request", toAttrs(attrs)...)
}

func toAttrs(a []any) []slog.Attr {
	out := make([]slog.Attr, 0, len(a))
	for _, x := range a {
		if at, ok := x.(slog.Attr); ok {
			out = append(out, at)
		}
	}
	return out
}
