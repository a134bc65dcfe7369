package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/imageproc"
)

// DefaultMaxBody is the largest request body taken unless Options.MaxBody
// says otherwise: room for a few images as data: URIs.
const DefaultMaxBody = 64 << 20

// Options configure a server.
type Options struct {
	// ModelName is the model id clients name (and /v1/models lists).
	ModelName string
	// APIKey, when set, is required as "Authorization: Bearer KEY" on /v1/.
	APIKey string
	// MaxBody bounds a request body (0: DefaultMaxBody); over it: 413.
	MaxBody int64
	// RequestTimeout bounds a request from arrival to its last byte,
	// waiting in the queue included (0: none); over it: 504.
	RequestTimeout time.Duration
	// ImageSources is where image_url parts may come from; the zero value
	// takes data: URIs only. Files are never read for a request.
	ImageSources medgemma.ImageSources
	// Image, PanAndScan, PadSquare and Context are the defaults of every
	// chat (see medgemma.ChatOptions).
	Image      imageproc.Options
	PanAndScan bool
	PadSquare  bool
	Context    int
	// Think is the default of a request's "think" (MedGemma 27B).
	Think bool
	// LogContent logs messages and answers (never, by default).
	LogContent bool
	// Logger receives one line per request (default: slog.Default()).
	Logger *slog.Logger
}

// Server serves one model over OpenAI's API. Create it with New before the
// model is loaded (it answers 503 until Ready), so that /health answers at
// once.
type Server struct {
	opts     Options
	log      *slog.Logger
	metrics  *metrics
	created  int64
	keyHash  [32]byte
	ready    atomic.Bool
	draining atomic.Bool

	mu       sync.RWMutex
	model    *medgemma.Model
	sched    *medgemma.Scheduler
	defaults generate.Options // a request's sampling before its own fields

	grammars grammarCache
}

// New returns a server that answers 503 on the API until Ready.
func New(opts Options) *Server {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, log: opts.Logger, created: time.Now().Unix()}
	s.keyHash = sha256.Sum256([]byte(opts.APIKey))
	s.metrics = newMetrics(s)
	return s
}

// Ready makes the API serve m through sched, with defaults as the sampling
// of a request that sets nothing (the checkpoint's generation_config.json
// and the command line's flags).
func (s *Server) Ready(m *medgemma.Model, sched *medgemma.Scheduler, defaults generate.Options) {
	s.mu.Lock()
	s.model, s.sched, s.defaults = m, sched, defaults
	s.mu.Unlock()
	s.ready.Store(true)
}

// Drain makes /ready and new API requests answer 503, for a graceful
// shutdown; requests already taken go on.
func (s *Server) Drain() { s.draining.Store(true) }

// engine returns the model and scheduler, or a 503 while loading or
// draining.
func (s *Server) engine() (*medgemma.Model, *medgemma.Scheduler, generate.Options, *apiError) {
	switch {
	case s.draining.Load():
		return nil, nil, generate.Options{}, unavailable("the server is shutting down")
	case !s.ready.Load():
		return nil, nil, generate.Options{}, unavailable("the model is loading")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.model, s.sched, s.defaults, nil
}

// loaded returns the model and scheduler once ready, draining or not (nil
// before): for metrics, which go on while a server drains.
func (s *Server) loaded() (*medgemma.Model, *medgemma.Scheduler) {
	if !s.ready.Load() {
		return nil, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.model, s.sched
}

// route is one path: its handlers by method, and whether it needs the key.
type route struct {
	methods map[string]http.HandlerFunc
	auth    bool
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler {
	routes := map[string]route{
		"/v1/chat/completions": {methods: map[string]http.HandlerFunc{http.MethodPost: s.chatCompletions}, auth: true},
		"/v1/completions":      {methods: map[string]http.HandlerFunc{http.MethodPost: s.completions}, auth: true},
		"/v1/models":           {methods: map[string]http.HandlerFunc{http.MethodGet: s.models}, auth: true},
		"/health":              {methods: map[string]http.HandlerFunc{http.MethodGet: s.health}},
		"/ready":               {methods: map[string]http.HandlerFunc{http.MethodGet: s.readiness}},
		"/metrics":             {methods: map[string]http.HandlerFunc{http.MethodGet: s.metrics.serve}},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &requestLog{}
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), logKey{}, rec))
		path := r.URL.Path
		rt, ok := routes[path]
		if !ok && strings.HasPrefix(path, "/v1/models/") {
			rt, ok = route{methods: map[string]http.HandlerFunc{http.MethodGet: s.model1}, auth: true}, true
		}
		endpoint := path
		switch {
		case !ok:
			endpoint = "other"
			writeError(sw, &apiError{status: http.StatusNotFound, Message: "no such path: " + path, Type: "not_found_error", Code: str("not_found")})
		case rt.auth && !s.authorized(r):
			sw.Header().Set("WWW-Authenticate", `Bearer realm="medgemma"`)
			writeError(sw, &apiError{status: http.StatusUnauthorized, Message: "missing or wrong API key (Authorization: Bearer KEY)",
				Type: "authentication_error", Code: str("invalid_api_key")})
		case rt.methods[r.Method] == nil:
			var allow []string
			for m := range rt.methods {
				allow = append(allow, m)
			}
			sw.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(sw, &apiError{status: http.StatusMethodNotAllowed, Message: r.Method + " is not allowed on " + path, Type: "invalid_request_error", Code: str("method_not_allowed")})
		default:
			if strings.HasPrefix(path, "/v1/models/") {
				endpoint = "/v1/models/{model}"
			}
			rt.methods[r.Method](sw, r)
		}
		s.metrics.request(endpoint, sw.code())
		if rec.errMessage == "" {
			rec.errMessage = sw.errMessage
		}
		s.logRequest(r, sw.code(), time.Since(start), rec)
	})
}

// authorized compares the key in constant time (over hashes, so that not
// even its length shows).
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.APIKey == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(h[:], s.keyHash[:]) == 1
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readiness(w http.ResponseWriter, r *http.Request) {
	if _, _, _, e := s.engine(); e != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": e.Message})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type modelJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) modelEntry() modelJSON {
	return modelJSON{ID: s.opts.ModelName, Object: "model", Created: s.created, OwnedBy: "medgemma"}
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelJSON{s.modelEntry()}})
}

func (s *Server) model1(w http.ResponseWriter, r *http.Request) {
	if name := strings.TrimPrefix(r.URL.Path, "/v1/models/"); name != s.opts.ModelName {
		writeError(w, s.unknownModel(name))
		return
	}
	writeJSON(w, http.StatusOK, s.modelEntry())
}

func (s *Server) unknownModel(name string) *apiError {
	return &apiError{status: http.StatusNotFound, Message: "the model " + quote(name) + " is not served here; this server serves " + quote(s.opts.ModelName),
		Type: "not_found_error", Param: str("model"), Code: str("model_not_found")}
}

func quote(s string) string { return `"` + s + `"` }

// checkModel accepts the served model's name (an empty one too).
func (s *Server) checkModel(name string) *apiError {
	if name != "" && name != s.opts.ModelName {
		return s.unknownModel(name)
	}
	return nil
}

// requestContext bounds a request by the timeout, if any.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	if s.opts.RequestTimeout > 0 {
		return context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	}
	return context.WithCancel(r.Context())
}

// newID is a response id: a prefix and 24 random hex digits.
func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// statusWriter remembers the status sent.
type statusWriter struct {
	http.ResponseWriter
	status     int
	errMessage string // the error sent, if any
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// code is the status sent; 499 (as nginx logs it) when the client left
// before anything was sent.
func (w *statusWriter) code() int {
	if w.status == 0 {
		return 499
	}
	return w.status
}
