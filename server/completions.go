package server

import (
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/tokenizer"
)

// defaultCompletionTokens is OpenAI's (and vLLM's) max_tokens for
// completions that do not say.
const defaultCompletionTokens = 16

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
}

type completionChoice struct {
	Index        int                 `json:"index"`
	Text         string              `json:"text"`
	Logprobs     *completionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

// completionLogprobs is the completions API's logprobs: per token its text,
// logprob (null for a prompt's first token, which has nothing before it),
// the top alternatives with the chosen token among them (null for the
// first), and its offset in the text the tokens spell (in characters).
type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []*float64           `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// add appends tokens (first: the prompt's first token, without a score).
func (l *completionLogprobs) add(tok *tokenizer.Tokenizer, steps []generate.StepLogprobs, asIDs bool) {
	offset := 0
	if n := len(l.Tokens); n > 0 {
		offset = l.TextOffset[n-1] + utf8.RuneCountInString(l.Tokens[n-1])
	}
	for _, st := range steps {
		text, _ := tokenText(tok, st.Token, st.Text, asIDs)
		l.Tokens = append(l.Tokens, text)
		l.TextOffset = append(l.TextOffset, offset)
		offset += utf8.RuneCountInString(text)
		lp := float64(st.Logprob)
		top := map[string]float64{text: lp}
		for _, a := range st.Top {
			at, _ := tokenText(tok, a.Token, a.Text, asIDs)
			if _, ok := top[at]; !ok {
				top[at] = float64(a.Logprob)
			}
		}
		l.TokenLogprobs = append(l.TokenLogprobs, &lp)
		l.TopLogprobs = append(l.TopLogprobs, top)
	}
}

// addFirst appends a prompt's first token, which has no score.
func (l *completionLogprobs) addFirst(tok *tokenizer.Tokenizer, id int32, asIDs bool) {
	text, _ := tokenText(tok, id, tok.Decode([]int32{id}, false), asIDs)
	l.Tokens = append(l.Tokens, text)
	l.TextOffset = append(l.TextOffset, 0)
	l.TokenLogprobs = append(l.TokenLogprobs, nil)
	l.TopLogprobs = append(l.TopLogprobs, nil)
}

// completionJob is one prompt of a completions request.
type completionJob struct {
	text string // the prompt as text (echoed)
	ids  []int32
}

// completions is POST /v1/completions.
func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := logOf(r.Context())
	m, sched, defaults, e := s.engine()
	if e != nil {
		writeError(w, e)
		return
	}
	var req completionRequest
	if e := decode(r, w, s.opts.MaxBody, &req); e != nil {
		writeError(w, e)
		return
	}
	if e := s.checkModel(req.Model); e != nil {
		writeError(w, e)
		return
	}
	if req.Suffix != nil && *req.Suffix != "" {
		writeError(w, invalid("suffix", "suffix (insertion) is not supported"))
		return
	}
	texts, idLists, e := req.prompts()
	if e != nil {
		writeError(w, e)
		return
	}
	defaults.MaxNewTokens = defaultCompletionTokens
	o, e := req.options(defaults, req.MaxTokens, 0)
	if e != nil {
		writeError(w, e)
		return
	}
	if o.MaxNewTokens == 0 && !req.Echo {
		writeError(w, invalid("max_tokens", "max_tokens 0 generates nothing: use it with echo to score the prompt"))
		return
	}
	if req.Logprobs != nil {
		if n := *req.Logprobs; n < 0 || n > generate.MaxTopLogprobs {
			writeError(w, invalid("logprobs", "logprobs %d must be in 0..%d", n, generate.MaxTopLogprobs))
			return
		}
		o.Logprobs, o.TopLogprobs = true, *req.Logprobs
	}
	tok := m.Tokenizer()
	jobs := make([]completionJob, len(texts))
	for i := range jobs {
		if idLists[i] != nil {
			jobs[i] = completionJob{text: tok.Decode(idLists[i], false), ids: idLists[i]}
		} else {
			jobs[i] = completionJob{text: texts[i], ids: tok.Encode(texts[i], true)}
		}
		if s.opts.LogContent {
			rec.content = append(rec.content, slog.String("prompt", jobs[i].text))
		}
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	id := newID("cmpl-")
	rec.stream = req.Stream
	var out *sse
	if req.Stream {
		out = newSSE(w)
	}
	created := time.Now().Unix()
	var choices []completionChoice
	total := usage{PromptTokensDetails: &promptDetails{}}
	for i, job := range jobs {
		var ttft time.Duration
		first := sync.OnceFunc(func() { ttft = time.Since(start) })
		opts := medgemma.CompleteOptions{Generate: o, Echo: req.Echo, Context: s.opts.Context,
			OnToken: func(generate.StepLogprobs) error { first(); return nil }}
		var lps *completionLogprobs
		var echo func() error
		if req.Stream {
			echo = s.streamCompletion(out, &opts, &req, id, created, i, job)
		}
		res, err := sched.Complete(ctx, job.ids, opts)
		if err == nil && res.FinishReason == generate.FinishCancelled {
			err = ctx.Err()
		}
		if err != nil {
			if clientGone(ctx) {
				return
			}
			ae := errorFor(err, "prompt")
			rec.errMessage = ae.Message
			if ae.status == http.StatusTooManyRequests {
				ae.retryAfter = int(sched.RetryAfter().Seconds())
			}
			if req.Stream {
				out.fail(ae)
			} else {
				writeError(w, ae)
			}
			return
		}
		total.PromptTokens += len(res.PromptIDs)
		total.CompletionTokens += len(res.Tokens)
		total.PromptTokensDetails.CachedTokens += res.ReusedTokens
		rec.promptTokens, rec.completionTokens, rec.finishReason, rec.ttft = total.PromptTokens, total.CompletionTokens, res.FinishReason, ttft
		s.metrics.finished(len(res.PromptIDs), len(res.Tokens), 0, 0, ttft, res.Timings.Decode, time.Since(start))
		if s.opts.LogContent {
			rec.content = append(rec.content, slog.String("answer", res.Text))
		}
		if o.Logprobs {
			lps = &completionLogprobs{Tokens: []string{}, TokenLogprobs: []*float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
			if req.Echo {
				lps.addFirst(tok, job.ids[0], req.ReturnTokensAsTokenIDs)
				lps.add(tok, res.PromptLogprobs, req.ReturnTokensAsTokenIDs)
			}
			lps.add(tok, res.Logprobs, req.ReturnTokensAsTokenIDs)
		}
		if req.Stream {
			echo() // a prompt scored without generating has sent nothing yet
			// The logprobs (the prompt's, then the generated tokens') come
			// with the last chunk.
			out.send(completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.opts.ModelName,
				Choices: []completionChoice{{Index: i, Logprobs: lps, FinishReason: finishReason(res.FinishReason)}}})
			continue
		}
		text := res.Text
		if req.Echo {
			text = job.text + text
		}
		choices = append(choices, completionChoice{Index: i, Text: text, Logprobs: lps, FinishReason: finishReason(res.FinishReason)})
	}
	total.TotalTokens = total.PromptTokens + total.CompletionTokens
	if req.Stream {
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			out.send(completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.opts.ModelName, Choices: []completionChoice{}, Usage: &total})
		}
		out.done()
		return
	}
	writeJSON(w, http.StatusOK, completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.opts.ModelName, Choices: choices, Usage: &total})
}

// streamCompletion sets a prompt's callbacks to stream its text as chunks;
// with echo, the prompt goes first, at its first generated token. It
// returns the function that sends the echo (once).
func (s *Server) streamCompletion(out *sse, opts *medgemma.CompleteOptions, req *completionRequest, id string, created int64, index int, job completionJob) func() error {
	send := func(text string) error {
		return out.send(completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.opts.ModelName,
			Choices: []completionChoice{{Index: index, Text: text}}})
	}
	echoed := !req.Echo
	echo := func() error {
		if echoed {
			return nil
		}
		echoed = true
		return send(job.text)
	}
	prevToken := opts.OnToken
	opts.OnToken = func(st generate.StepLogprobs) error {
		if err := prevToken(st); err != nil {
			return err
		}
		return echo()
	}
	opts.OnText = func(text string) error {
		if err := echo(); err != nil {
			return err
		}
		return send(text)
	}
	return echo
}
