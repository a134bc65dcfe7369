package server

import (
	"encoding/json"
	"net/http"
)

// sse writes Server-Sent Events: each event one "data: JSON" line and a
// blank line, flushed at once; the stream ends with "data: [DONE]". The
// headers go out with the first event, so that an error found before it
// is still an ordinary JSON error with its status.
type sse struct {
	w       http.ResponseWriter
	started bool
	err     error // the first write error: the client has gone
}

func newSSE(w http.ResponseWriter) *sse { return &sse{w: w} }

func (s *sse) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
	s.w.WriteHeader(http.StatusOK)
}

// send writes one event; after a failed write it does nothing and returns
// that error.
func (s *sse) send(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.raw(data)
}

func (s *sse) raw(data []byte) error {
	if s.err != nil {
		return s.err
	}
	s.start()
	if _, err := s.w.Write(append(append([]byte("data: "), data...), '\n', '\n')); err != nil {
		s.err = err
		return err
	}
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// done ends the stream.
func (s *sse) done() { s.raw([]byte("[DONE]")) }

// fail ends a started stream with an error event, as vLLM does; before the
// stream has started the error is an ordinary response.
func (s *sse) fail(e *apiError) {
	if !s.started {
		writeError(s.w, e)
		return
	}
	s.send(map[string]*apiError{"error": e})
	s.done()
}
