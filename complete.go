package medgemma

import (
	"context"
	"fmt"
	"time"

	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/model"
)

// CompleteOptions control a raw-prompt completion (Model.Complete).
type CompleteOptions struct {
	// Generate holds sampling and stopping; start from Model.Defaults.
	// MaxNewTokens 0 generates nothing, which only makes sense with Echo
	// (scoring a text).
	Generate generate.Options
	// Echo returns the prompt's tokens with the result, and with
	// Generate.Logprobs their logprobs (PromptLogprobs): what OpenAI's
	// completions call echo, and log-likelihood evaluations use.
	Echo bool
	// OnText and OnToken are as in ChatOptions.
	OnText  func(string) error
	OnToken func(generate.StepLogprobs) error
	// Context is the most tokens of prompt and answer; 0: the prompt plus
	// MaxNewTokens, within the model's limit.
	Context int
}

// CompletionResult is a finished completion: the generated part as in Chat,
// and with Echo and Logprobs the prompt's scores.
type CompletionResult struct {
	Result
	// PromptLogprobs scores each prompt token after the first (the first has
	// nothing before it): len(PromptIDs)-1 entries, with Echo and Logprobs.
	PromptLogprobs []generate.StepLogprobs
}

// Complete continues a raw prompt of token ids (no chat template; a text
// prompt is m.Tokenizer().Encode(text, true), with <bos> as transformers'
// tokenizer and vLLM add it). Image soft tokens are refused: a raw prompt
// has no images. The next turn's reuse applies as in Chat, except when the
// prompt is scored (Echo with Logprobs), which needs every position's
// logits.
func (m *Model) Complete(ctx context.Context, ids []int32, opts CompleteOptions) (*CompletionResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.checkRaw(ids, &opts); err != nil {
		return nil, err
	}
	cfg := m.model.Config
	o := opts.Generate
	generateNone := o.MaxNewTokens == 0
	if generateNone {
		o.MaxNewTokens = 1
	}
	n := len(ids)
	want := n + o.MaxNewTokens
	if generateNone {
		want = n + 1
	}
	capacity := opts.Context
	if capacity == 0 {
		capacity = max(want, sessionCapacity)
	}
	capacity = min(capacity, cfg.Text.MaxPositionEmbeddings)
	if n >= capacity {
		return nil, fmt.Errorf("%w: %d tokens, context %d", ErrPromptTooLong, n, capacity)
	}
	score := opts.Echo && o.Logprobs
	p := &model.Prompt{IDs: ids}
	s, err := m.takeSession(capacity)
	if err != nil {
		return nil, err
	}
	defer m.putSession(s)
	reuse := 0
	if !score { // scoring needs the logits of every position: no reuse
		reuse = s.Match(p)
	}
	res := &CompletionResult{Result: Result{PromptIDs: ids, ReusedTokens: reuse}}
	start := time.Now()
	var last []float32
	if score {
		res.PromptLogprobs, last, err = generate.PrefillLogprobs(ctx, s, m.tok, p, prefillChunk, o.TopLogprobs)
	} else {
		last, err = generate.Prefill(ctx, s, p, prefillChunk)
	}
	if err != nil {
		return nil, err
	}
	defer m.track(s)()
	res.Timings.Prefill = time.Since(start)
	res.Timings.PromptTokens = n
	res.Timings.PrefillTokensPerS = float64(n-reuse) / res.Timings.Prefill.Seconds()
	if err := ctx.Err(); err != nil {
		res.FinishReason = generate.FinishCancelled
		return res, nil
	}
	if generateNone {
		res.FinishReason = generate.FinishLength
		return res, nil
	}
	g, err := generate.Run(ctx, s, m.tok, last, ids, o, generate.Output{Text: opts.OnText, Token: opts.OnToken})
	if err != nil {
		return nil, err
	}
	res.Text, res.Tokens, res.Logprobs, res.FinishReason = g.Text, g.Tokens, g.Logprobs, g.FinishReason
	res.Timings.Decode = g.DecodeTime
	res.Timings.DecodeTokensPerS = g.TokensPerSecond()
	return res, nil
}

// checkRaw checks a raw prompt and its options.
func (m *Model) checkRaw(ids []int32, opts *CompleteOptions) error {
	cfg := m.model.Config
	o := opts.Generate
	if o.MaxNewTokens == 0 {
		if !opts.Echo {
			return fmt.Errorf("%w: max new tokens 0 generates nothing (score the prompt with echo)", ErrInvalidOptions)
		}
		o.MaxNewTokens = 1 // to validate the rest
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if opts.Context < 0 {
		return fmt.Errorf("%w: context %d", ErrInvalidOptions, opts.Context)
	}
	if len(ids) == 0 {
		return fmt.Errorf("%w: an empty prompt", ErrInvalidConversation)
	}
	for i, id := range ids {
		switch {
		case id < 0 || int(id) >= cfg.Text.VocabSize:
			return fmt.Errorf("%w: token id %d at position %d is outside the vocabulary (0..%d)", ErrInvalidConversation, id, i, cfg.Text.VocabSize-1)
		case cfg.ImageTokenIndex > 0 && int(id) == cfg.ImageTokenIndex:
			return fmt.Errorf("%w: token id %d at position %d is an image soft token; a raw prompt has no images", ErrInvalidConversation, id, i)
		}
	}
	return nil
}
