package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/grammar"
)

// apiError is an error in OpenAI's shape, with its HTTP status.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
	// retryAfter, for 429 and 503, in seconds.
	retryAfter int
}

func (e *apiError) Error() string { return e.Message }

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// invalid is a 400 about a request field.
func invalid(param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Type: "invalid_request_error", Param: str(param)}
}

func withCode(e *apiError, code string) *apiError {
	e.Code = str(code)
	return e
}

// errorFor maps what the library or the scheduler returned to a status.
// param names the request field the error is about, when it is about one.
func errorFor(err error, param string) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, grammar.ErrGrammar):
		return invalid("response_format", "%v", err)
	case errors.Is(err, medgemma.ErrPromptTooLong):
		return withCode(invalid(param, "%v", err), "context_length_exceeded")
	case errors.Is(err, medgemma.ErrImageTooLarge):
		return withCode(invalid(param, "%v", err), "image_too_large")
	case errors.Is(err, medgemma.ErrUnsupportedImage):
		return withCode(invalid(param, "%v", err), "unsupported_image")
	case errors.Is(err, medgemma.ErrCorruptImage), errors.Is(err, medgemma.ErrImageOptions):
		return withCode(invalid(param, "%v", err), "invalid_image")
	case errors.Is(err, medgemma.ErrImageSource):
		return withCode(invalid(param, "%v", err), "invalid_image_url")
	case errors.Is(err, medgemma.ErrTextOnly), errors.Is(err, medgemma.ErrInvalidConversation):
		return invalid(param, "%v", err)
	case errors.Is(err, medgemma.ErrInvalidOptions):
		return invalid("", "%v", err)
	case errors.Is(err, medgemma.ErrQueueFull):
		return &apiError{status: http.StatusTooManyRequests, Message: "the server is busy: " + err.Error(), Type: "rate_limit_error", Code: str("rate_limit_exceeded")}
	case errors.Is(err, medgemma.ErrClosed):
		return unavailable("the server is shutting down")
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusGatewayTimeout, Message: "the request took longer than the server's request timeout", Type: "timeout", Code: str("request_timeout")}
	}
	return &apiError{status: http.StatusInternalServerError, Message: "internal error: " + err.Error(), Type: "server_error"}
}

func unavailable(msg string) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, Message: msg, Type: "service_unavailable", retryAfter: 5}
}

// writeError sends an error response.
func writeError(w http.ResponseWriter, e *apiError) {
	if sw, ok := w.(*statusWriter); ok {
		sw.errMessage = e.Message // for the request's log line
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeJSON(w, e.status, map[string]*apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// outcome is a request's error: the scheduler's, or, when one of its n
// choices ended cancelled (reason gives each one's finish reason), the
// context's: the client left or the request timed out.
func outcome(ctx context.Context, err error, n int, reason func(i int) string) error {
	if err != nil {
		return err
	}
	for i := range n {
		if reason(i) == generate.FinishCancelled {
			return ctx.Err()
		}
	}
	return nil
}

// refusal is the answer to a request that failed with err, logged, with a
// Retry-After when the queue was full; nil when its client has left and
// nobody is there to answer.
func refusal(ctx context.Context, sched *medgemma.Scheduler, err error, param string) *apiError {
	if clientGone(ctx) {
		return nil
	}
	ae := errorFor(err, param)
	logOf(ctx).errMessage = ae.Message
	if ae.status == http.StatusTooManyRequests {
		ae.retryAfter = int(sched.RetryAfter().Seconds())
	}
	return ae
}
