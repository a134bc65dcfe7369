package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/tokenizer"
)

// The chat completion as OpenAI returns it: whole, or as chunks.
type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
}

type chatChoice struct {
	Index        int           `json:"index"`
	Message      *chatOut      `json:"message,omitempty"`
	Delta        *chatOut      `json:"delta,omitempty"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

// chatOut is a message (whole) or a delta (chunks): empty fields of a delta
// are left out.
type chatOut struct {
	Role             string  `json:"role,omitempty"`
	Content          *string `json:"content,omitempty"`
	ReasoningContent *string `json:"reasoning_content,omitempty"`
}

type chatLogprobs struct {
	Content []tokenLogprob `json:"content"`
}

type tokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []topLogprob `json:"top_logprobs"`
}

type topLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

type usage struct {
	PromptTokens        int            `json:"prompt_tokens"`
	CompletionTokens    int            `json:"completion_tokens"`
	TotalTokens         int            `json:"total_tokens"`
	PromptTokensDetails *promptDetails `json:"prompt_tokens_details,omitempty"`
}

// promptDetails says, as OpenAI's prompt caching does, how many prompt
// tokens came from the cache (the previous turn's KV) instead of a prefill.
type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

func usageOf(res *medgemma.Result) *usage {
	p, c := len(res.PromptIDs), len(res.Tokens)
	return &usage{PromptTokens: p, CompletionTokens: c, TotalTokens: p + c, PromptTokensDetails: &promptDetails{CachedTokens: res.ReusedTokens}}
}

// tokenText names a token in logprobs: its text, or "token_id:N" as vLLM
// writes it when asked (return_tokens_as_token_ids).
func tokenText(tok *tokenizer.Tokenizer, id int32, text string, asIDs bool) (string, []int) {
	b := tok.Bytes(id)
	ints := make([]int, len(b))
	for i, c := range b {
		ints[i] = int(c)
	}
	if asIDs {
		return fmt.Sprintf("token_id:%d", id), ints
	}
	return text, ints
}

func chatLogprobsOf(tok *tokenizer.Tokenizer, steps []generate.StepLogprobs, asIDs bool) []tokenLogprob {
	out := make([]tokenLogprob, 0, len(steps))
	for _, st := range steps {
		t, b := tokenText(tok, st.Token, st.Text, asIDs)
		e := tokenLogprob{Token: t, Logprob: float64(st.Logprob), Bytes: b, TopLogprobs: []topLogprob{}}
		for _, a := range st.Top {
			at, ab := tokenText(tok, a.Token, a.Text, asIDs)
			e.TopLogprobs = append(e.TopLogprobs, topLogprob{Token: at, Logprob: float64(a.Logprob), Bytes: ab})
		}
		out = append(out, e)
	}
	return out
}

// finishReason maps the library's to OpenAI's.
func finishReason(r string) *string {
	switch r {
	case generate.FinishStop, generate.FinishLength:
	default:
		r = generate.FinishStop // a cancelled request's answer is never sent
	}
	return &r
}

// maxTokensOf picks max_completion_tokens over max_tokens.
func (r *chatRequest) maxTokensOf() *int {
	if r.MaxCompletionTokens != nil {
		return r.MaxCompletionTokens
	}
	return r.MaxTokens
}

// chatCompletions is POST /v1/chat/completions.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := logOf(r.Context())
	m, sched, defaults, e := s.engine()
	if e != nil {
		writeError(w, e)
		return
	}
	var req chatRequest
	if e := decode(r, w, s.opts.MaxBody, &req); e != nil {
		writeError(w, e)
		return
	}
	if e := s.checkModel(req.Model); e != nil {
		writeError(w, e)
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, invalid("messages", "messages must hold at least one message"))
		return
	}
	o, e := req.options(defaults, req.maxTokensOf(), 1)
	if e != nil {
		writeError(w, e)
		return
	}
	if req.Logprobs != nil && *req.Logprobs {
		o.Logprobs = true
	}
	if req.TopLogprobs != nil {
		switch n := *req.TopLogprobs; {
		case !o.Logprobs:
			writeError(w, invalid("top_logprobs", "top_logprobs needs logprobs: true"))
			return
		case n < 0 || n > generate.MaxTopLogprobs:
			writeError(w, invalid("top_logprobs", "top_logprobs %d must be in 0..%d", n, generate.MaxTopLogprobs))
			return
		default:
			o.TopLogprobs = n
		}
	}
	msgs := make([]chat.Message, len(req.Messages))
	for i, msg := range req.Messages {
		msgs[i] = msg.Message
	}
	if s.opts.LogContent {
		if b, err := json.Marshal(msgs); err == nil {
			rec.content = append(rec.content, slog.String("messages", string(b)))
		}
	}
	think := s.opts.Think
	if req.Think != nil {
		think = *req.Think
	}
	opts := medgemma.ChatOptions{Generate: o, ImageSources: s.opts.ImageSources, Image: s.opts.Image,
		PanAndScan: s.opts.PanAndScan, PadSquare: s.opts.PadSquare, Context: s.opts.Context, Thinking: think}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	id := newID("chatcmpl-")
	rec.stream = req.Stream
	var ttft time.Duration
	first := sync.OnceFunc(func() { ttft = time.Since(start) })
	prevToken := opts.OnToken
	opts.OnToken = func(st generate.StepLogprobs) error {
		first()
		if prevToken != nil {
			return prevToken(st)
		}
		return nil
	}
	var res *medgemma.Result
	var err error
	if req.Stream {
		res, err = s.streamChat(ctx, w, m, sched, msgs, opts, &req, id)
	} else {
		res, err = sched.Chat(ctx, msgs, opts)
	}
	if res != nil {
		rec.promptTokens, rec.completionTokens, rec.reusedTokens = len(res.PromptIDs), len(res.Tokens), res.ReusedTokens
		rec.imagesEncoded, rec.imagesCached, rec.finishReason, rec.ttft = res.ImagesEncoded, res.ImagesCached, res.FinishReason, ttft
		s.metrics.finished(len(res.PromptIDs), len(res.Tokens), res.ImagesEncoded, res.ImagesCached, ttft, res.Timings.Decode, time.Since(start))
		if s.opts.LogContent {
			rec.content = append(rec.content, slog.String("answer", res.Text), slog.String("thinking", res.Thinking))
		}
	}
	if req.Stream {
		return // the stream has been answered, errors included
	}
	if err == nil && res.FinishReason == generate.FinishCancelled {
		err = ctx.Err()
	}
	if err != nil {
		if clientGone(ctx) {
			return
		}
		ae := errorFor(err, "messages")
		rec.errMessage = ae.Message
		if ae.status == http.StatusTooManyRequests {
			ae.retryAfter = int(sched.RetryAfter().Seconds())
		}
		writeError(w, ae)
		return
	}
	tok := m.Tokenizer()
	msg := &chatOut{Role: chat.RoleAssistant, Content: &res.Text}
	if think && res.Thinking != "" {
		msg.ReasoningContent = &res.Thinking
	}
	choice := chatChoice{Message: msg, FinishReason: finishReason(res.FinishReason)}
	if o.Logprobs {
		choice.Logprobs = &chatLogprobs{Content: chatLogprobsOf(tok, res.Logprobs, req.ReturnTokensAsTokenIDs)}
	}
	writeJSON(w, http.StatusOK, chatResponse{ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: s.opts.ModelName,
		Choices: []chatChoice{choice}, Usage: usageOf(res)})
}

// streamChat runs a chat as Server-Sent Events: the role first, then the
// content (and reasoning_content) as it is generated, with the logprobs of
// the tokens generated since the previous chunk, a last chunk with the
// finish reason, the usage when asked, and [DONE]. Nothing is sent before
// the first token, so that a request refused on its way in (queue full, a
// bad image, a prompt over the context) still gets its status.
func (s *Server) streamChat(ctx context.Context, w http.ResponseWriter, m *medgemma.Model, sched *medgemma.Scheduler,
	msgs []chat.Message, opts medgemma.ChatOptions, req *chatRequest, id string) (*medgemma.Result, error) {
	out := newSSE(w)
	tok := m.Tokenizer()
	created := time.Now().Unix()
	chunk := func(delta chatOut, lps []generate.StepLogprobs, finish *string) error {
		c := chatChoice{Delta: &delta, FinishReason: finish}
		if lps != nil {
			c.Logprobs = &chatLogprobs{Content: chatLogprobsOf(tok, lps, req.ReturnTokensAsTokenIDs)}
		}
		return out.send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.opts.ModelName, Choices: []chatChoice{c}})
	}
	var pending []generate.StepLogprobs // logprobs not yet sent
	begin := func() error {
		if out.started {
			return nil
		}
		empty := ""
		return chunk(chatOut{Role: chat.RoleAssistant, Content: &empty}, nil, nil)
	}
	opts.OnText = func(text string) error {
		if err := begin(); err != nil {
			return err
		}
		var lps []generate.StepLogprobs
		if opts.Generate.Logprobs {
			lps, pending = pending, nil
			if lps == nil {
				lps = []generate.StepLogprobs{}
			}
		}
		return chunk(chatOut{Content: &text}, lps, nil)
	}
	if opts.Thinking {
		opts.OnThinking = func(text string) error {
			if err := begin(); err != nil {
				return err
			}
			return chunk(chatOut{ReasoningContent: &text}, nil, nil)
		}
	}
	prevToken := opts.OnToken
	opts.OnToken = func(st generate.StepLogprobs) error {
		if err := prevToken(st); err != nil {
			return err
		}
		if opts.Generate.Logprobs {
			pending = append(pending, st)
		}
		return begin()
	}
	res, err := sched.Chat(ctx, msgs, opts)
	if err == nil && res.FinishReason == generate.FinishCancelled {
		err = ctx.Err()
	}
	if err != nil {
		if !clientGone(ctx) {
			ae := errorFor(err, "messages")
			logOf(ctx).errMessage = ae.Message
			if ae.status == http.StatusTooManyRequests {
				ae.retryAfter = int(sched.RetryAfter().Seconds())
			}
			out.fail(ae)
		}
		return res, err
	}
	if err := begin(); err != nil {
		return res, err
	}
	if len(pending) > 0 {
		empty := ""
		chunk(chatOut{Content: &empty}, pending, nil)
	}
	chunk(chatOut{}, nil, finishReason(res.FinishReason))
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		out.send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.opts.ModelName,
			Choices: []chatChoice{}, Usage: usageOf(res)})
	}
	out.done()
	return res, nil
}

// clientGone reports whether a request's context ended because its client
// left (or the server stopped), rather than because of its timeout: there
// is nobody to answer.
func clientGone(ctx context.Context) bool { return ctx.Err() == context.Canceled }
