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

// usageOf counts a request's choices: the prompt once (its choices share
// it), the tokens of every choice.
func usageOf(results []*medgemma.Result) *usage {
	p, c := len(results[0].PromptIDs), 0
	for _, r := range results {
		c += len(r.Tokens)
	}
	return &usage{PromptTokens: p, CompletionTokens: c, TotalTokens: p + c, PromptTokensDetails: &promptDetails{CachedTokens: results[0].ReusedTokens}}
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
	n, e := req.choices()
	if e != nil {
		writeError(w, e)
		return
	}
	o, e := req.options(defaults, req.maxTokensOf(), 1)
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
	if req.Logprobs != nil && *req.Logprobs {
		o.Logprobs = true
	}
	if req.TopLogprobs != nil {
		switch k := *req.TopLogprobs; {
		case !o.Logprobs:
			writeError(w, invalid("top_logprobs", "top_logprobs needs logprobs: true"))
			return
		case k < 0 || k > generate.MaxTopLogprobs:
			writeError(w, invalid("top_logprobs", "top_logprobs %d must be in 0..%d", k, generate.MaxTopLogprobs))
			return
		default:
			o.TopLogprobs = k
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
	opts.OnToken = func(generate.StepLogprobs) error { first(); return nil }
	var results []*medgemma.Result
	var err error
	if req.Stream {
		results, err = s.streamChat(ctx, w, m, sched, msgs, opts, n, first, &req, id)
	} else {
		results, err = sched.ChatN(ctx, msgs, opts, n, nil)
	}
	if results != nil {
		res, use := results[0], usageOf(results)
		rec.promptTokens, rec.completionTokens, rec.reusedTokens = use.PromptTokens, use.CompletionTokens, res.ReusedTokens
		rec.imagesEncoded, rec.imagesCached, rec.finishReason, rec.ttft = res.ImagesEncoded, res.ImagesCached, res.FinishReason, ttft
		s.metrics.finished(use.PromptTokens, res.ImagesEncoded, res.ImagesCached, ttft, time.Since(start))
		for _, r := range results {
			s.metrics.decoded(len(r.Tokens), r.Timings.Decode)
			if s.opts.LogContent {
				rec.content = append(rec.content, slog.String("answer", r.Text), slog.String("thinking", r.Thinking))
			}
		}
	}
	if req.Stream {
		return // the stream has been answered, errors included
	}
	if err := outcome(ctx, err, len(results), func(i int) string { return results[i].FinishReason }); err != nil {
		if ae := refusal(ctx, sched, err, "messages"); ae != nil {
			writeError(w, ae)
		}
		return
	}
	tok := m.Tokenizer()
	choices := make([]chatChoice, len(results))
	for i, res := range results {
		msg := &chatOut{Role: chat.RoleAssistant, Content: &res.Text}
		if think && res.Thinking != "" {
			msg.ReasoningContent = &res.Thinking
		}
		choices[i] = chatChoice{Index: i, Message: msg, FinishReason: finishReason(res.FinishReason)}
		if o.Logprobs {
			choices[i].Logprobs = &chatLogprobs{Content: chatLogprobsOf(tok, res.Logprobs, req.ReturnTokensAsTokenIDs)}
		}
	}
	writeJSON(w, http.StatusOK, chatResponse{ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: s.opts.ModelName,
		Choices: choices, Usage: usageOf(results)})
}

// streamChat runs a chat as Server-Sent Events: for each choice its role
// first, then its content (and reasoning_content) as it is generated, with
// the logprobs of the tokens generated since its previous chunk, and a
// chunk with its finish reason; the choices interleaved as they come,
// each chunk naming its index. Then the usage when asked, and [DONE].
// Nothing is sent before the first token, so that a request refused on
// its way in (queue full, a bad image, a prompt over the context) still
// gets its status.
func (s *Server) streamChat(ctx context.Context, w http.ResponseWriter, m *medgemma.Model, sched *medgemma.Scheduler,
	msgs []chat.Message, opts medgemma.ChatOptions, n int, first func(), req *chatRequest, id string) ([]*medgemma.Result, error) {
	out := newSSE(w)
	tok := m.Tokenizer()
	created := time.Now().Unix()
	chunk := func(i int, delta chatOut, lps []generate.StepLogprobs, finish *string) error {
		c := chatChoice{Index: i, Delta: &delta, FinishReason: finish}
		if lps != nil {
			c.Logprobs = &chatLogprobs{Content: chatLogprobsOf(tok, lps, req.ReturnTokensAsTokenIDs)}
		}
		return out.send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.opts.ModelName, Choices: []chatChoice{c}})
	}
	started := make([]bool, n)
	pending := make([][]generate.StepLogprobs, n) // logprobs not yet sent
	begin := func(i int) error {
		if started[i] {
			return nil
		}
		started[i] = true
		empty := ""
		return chunk(i, chatOut{Role: chat.RoleAssistant, Content: &empty}, nil, nil)
	}
	logprobs := opts.Generate.Logprobs
	each := &medgemma.ChoiceCallbacks{
		Token: func(i int, st generate.StepLogprobs) error {
			first()
			if logprobs {
				pending[i] = append(pending[i], st)
			}
			return begin(i)
		},
		Text: func(i int, text string) error {
			if err := begin(i); err != nil {
				return err
			}
			var lps []generate.StepLogprobs
			if logprobs {
				lps, pending[i] = pending[i], nil
				if lps == nil {
					lps = []generate.StepLogprobs{}
				}
			}
			return chunk(i, chatOut{Content: &text}, lps, nil)
		},
	}
	if opts.Thinking {
		each.Thinking = func(i int, text string) error {
			if err := begin(i); err != nil {
				return err
			}
			return chunk(i, chatOut{ReasoningContent: &text}, nil, nil)
		}
	}
	opts.OnText, opts.OnThinking, opts.OnToken = nil, nil, nil
	results, err := sched.ChatN(ctx, msgs, opts, n, each)
	if err := outcome(ctx, err, len(results), func(i int) string { return results[i].FinishReason }); err != nil {
		if ae := refusal(ctx, sched, err, "messages"); ae != nil {
			out.fail(ae)
		}
		return results, err
	}
	for i, res := range results {
		if err := begin(i); err != nil {
			return results, err
		}
		if len(pending[i]) > 0 {
			empty := ""
			chunk(i, chatOut{Content: &empty}, pending[i], nil)
		}
		chunk(i, chatOut{}, nil, finishReason(res.FinishReason))
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		out.send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.opts.ModelName,
			Choices: []chatChoice{}, Usage: usageOf(results)})
	}
	out.done()
	return results, nil
}

// clientGone reports whether a request's context ended because its client
// left (or the server stopped), rather than because of its timeout: there
// is nobody to answer.
func clientGone(ctx context.Context) bool { return ctx.Err() == context.Canceled }
