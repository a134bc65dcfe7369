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
	n, e := req.choices()
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
	if o.Grammar, e = s.constraint(req.ResponseFormat, req.Grammar); e != nil {
		writeError(w, e)
		return
	}
	if o.Grammar != nil {
		generate.VocabOf(m.Tokenizer()) // indexed here, once, not in the scheduler's loop
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
	created := time.Now().Unix()
	var ttft time.Duration
	first := sync.OnceFunc(func() { ttft = time.Since(start) })
	prompts := make([][]int32, len(jobs))
	for i, job := range jobs {
		prompts[i] = job.ids
	}
	opts := medgemma.CompleteOptions{Generate: o, Echo: req.Echo, Context: s.opts.Context}
	var st *completionStream
	each := &medgemma.ChoiceCallbacks{Token: func(int, generate.StepLogprobs) error { first(); return nil }}
	if req.Stream {
		st = &completionStream{s: s, out: newSSE(w), id: id, created: created, jobs: jobs, n: n, echoing: req.Echo, echoed: make([]bool, len(jobs)*n)}
		each = st.callbacks(first)
	}
	results, err := sched.CompleteN(ctx, prompts, opts, n, each)
	if err := outcome(ctx, err, len(results), func(i int) string { return results[i].FinishReason }); err != nil {
		switch ae := refusal(ctx, sched, err, "prompt"); {
		case ae == nil:
		case req.Stream:
			st.out.fail(ae)
		default:
			writeError(w, ae)
		}
		return
	}
	total := usage{PromptTokensDetails: &promptDetails{}}
	for p := range jobs {
		res := results[p*n]
		total.PromptTokens += len(res.PromptIDs)
		total.PromptTokensDetails.CachedTokens += res.ReusedTokens
	}
	for _, res := range results {
		total.CompletionTokens += len(res.Tokens)
		s.metrics.decoded(len(res.Tokens), res.Timings.Decode)
		if s.opts.LogContent {
			rec.content = append(rec.content, slog.String("answer", res.Text))
		}
	}
	total.TotalTokens = total.PromptTokens + total.CompletionTokens
	rec.promptTokens, rec.completionTokens, rec.finishReason, rec.ttft = total.PromptTokens, total.CompletionTokens, results[0].FinishReason, ttft
	rec.reusedTokens = total.PromptTokensDetails.CachedTokens
	s.metrics.finished(total.PromptTokens, 0, 0, ttft, time.Since(start))
	choices := make([]completionChoice, len(results))
	for c, res := range results {
		job := jobs[c/n]
		var lps *completionLogprobs
		if o.Logprobs {
			lps = &completionLogprobs{Tokens: []string{}, TokenLogprobs: []*float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
			if req.Echo {
				lps.addFirst(tok, job.ids[0], req.ReturnTokensAsTokenIDs)
				lps.add(tok, res.PromptLogprobs, req.ReturnTokensAsTokenIDs)
			}
			lps.add(tok, res.Logprobs, req.ReturnTokensAsTokenIDs)
		}
		if req.Stream {
			st.echo(c) // a prompt scored without generating has sent nothing yet
			// The logprobs (the prompt's, then the generated tokens') come
			// with the last chunk.
			st.send(completionChoice{Index: c, Logprobs: lps, FinishReason: finishReason(res.FinishReason)})
			continue
		}
		text := res.Text
		if req.Echo {
			text = job.text + text
		}
		choices[c] = completionChoice{Index: c, Text: text, Logprobs: lps, FinishReason: finishReason(res.FinishReason)}
	}
	if req.Stream {
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			st.out.send(completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.opts.ModelName, Choices: []completionChoice{}, Usage: &total})
		}
		st.out.done()
		return
	}
	writeJSON(w, http.StatusOK, completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.opts.ModelName, Choices: choices, Usage: &total})
}

// completionStream sends a completions request's choices as chunks, each
// naming its index (prompt p's choice j is p*n+j), interleaved as they are
// generated; with echo, a choice's prompt goes first, at its first token.
type completionStream struct {
	s       *Server
	out     *sse
	id      string
	created int64
	jobs    []completionJob
	n       int
	echoing bool   // echo the prompts
	echoed  []bool // per choice
}

func (st *completionStream) send(c completionChoice) error {
	return st.out.send(completionResponse{ID: st.id, Object: "text_completion", Created: st.created, Model: st.s.opts.ModelName,
		Choices: []completionChoice{c}})
}

// echo sends choice c's prompt, once, when echo is asked.
func (st *completionStream) echo(c int) error {
	if !st.echoing || st.echoed[c] {
		return nil
	}
	st.echoed[c] = true
	return st.send(completionChoice{Index: c, Text: st.jobs[c/st.n].text})
}

func (st *completionStream) callbacks(first func()) *medgemma.ChoiceCallbacks {
	return &medgemma.ChoiceCallbacks{
		Token: func(c int, _ generate.StepLogprobs) error {
			first()
			return st.echo(c)
		},
		Text: func(c int, text string) error {
			if err := st.echo(c); err != nil {
				return err
			}
			return st.send(completionChoice{Index: c, Text: text})
		},
	}
}
