package generate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/medgemma/medgemma/model"
	"github.com/medgemma/medgemma/tokenizer"
)

// Finish reasons, as OpenAI names them.
const (
	FinishStop      = "stop"      // a stop token or stop string
	FinishLength    = "length"    // max new tokens or the context
	FinishCancelled = "cancelled" // the context was cancelled
)

// StepLogprobs is one generated token's logprob and its top alternatives.
type StepLogprobs struct {
	Token   int32
	Text    string
	Logprob float32
	Top     []AltLogprob
}

// AltLogprob is an alternative token with its text.
type AltLogprob struct {
	Token   int32
	Text    string
	Logprob float32
}

// Result is a finished generation.
type Result struct {
	Text         string  // without the stop string or stop token
	Tokens       []int32 // generated ids, the stop token included when it ended generation
	Logprobs     []StepLogprobs
	FinishReason string
	DecodeTime   time.Duration
}

// TokensPerSecond is the decode speed.
func (r *Result) TokensPerSecond() float64 {
	if r.DecodeTime <= 0 {
		return 0
	}
	return float64(len(r.Tokens)) / r.DecodeTime.Seconds()
}

// Output receives a generation as it happens; nil fields are not called,
// and an error from either ends the generation with that error.
type Output struct {
	// Text receives text as soon as it is final: complete UTF-8, and not
	// possibly the start of a stop string.
	Text func(string) error
	// Token receives each generated token as soon as it is sampled (before
	// its text may be final), with its logprobs when Options.Logprobs asks
	// for them; a stop token included.
	Token func(StepLogprobs) error
}

// Run generates after a prompt already run through s: last is the final
// hidden state of the prompt's last token, prompt its ids (for the
// repetition penalty). Cancelling ctx stops within one token.
func Run(ctx context.Context, s *model.Session, tok *tokenizer.Tokenizer, last []float32, prompt []int32, o Options, out Output) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg := s.Model().Config.Text
	left := s.Capacity() - s.Pos()
	if left <= 0 {
		return nil, fmt.Errorf("the prompt fills the context of %d tokens: nothing left to generate", s.Capacity())
	}
	maxNew := min(o.MaxNewTokens, left)
	sampler := NewSampler(o, cfg.VocabSize, prompt)
	logits := make([]float32, cfg.VocabSize)
	dec := tok.NewStreamDecoder(true)
	stop := newStopper(o.StopStrings)
	res := &Result{FinishReason: FinishLength}
	var piece []byte
	var alts []TokenLogprob
	var scratch []int32
	next := make([]int32, 1) // the token fed back, one allocation for all steps
	start := time.Now()
	defer func() { res.DecodeTime = time.Since(start) }()
	send := func(text string) error {
		if out.Text == nil || text == "" {
			return nil
		}
		return out.Text(text)
	}
	for step := 0; step < maxNew; step++ {
		if err := ctx.Err(); err != nil {
			res.FinishReason = FinishCancelled
			break
		}
		s.Logits(logits, last)
		id := sampler.Sample(logits)
		res.Tokens = append(res.Tokens, id)
		if o.Logprobs {
			var lp float32
			lp, alts, scratch = Logprobs(logits, id, o.TopLogprobs, alts, scratch)
			st := StepLogprobs{Token: id, Text: tok.Decode([]int32{id}, false), Logprob: lp}
			for _, a := range alts {
				st.Top = append(st.Top, AltLogprob{a.Token, tok.Decode([]int32{a.Token}, false), a.Logprob})
			}
			res.Logprobs = append(res.Logprobs, st)
			if out.Token != nil {
				if err := out.Token(st); err != nil {
					return nil, err
				}
			}
		} else if out.Token != nil {
			if err := out.Token(StepLogprobs{Token: id, Text: tok.Decode([]int32{id}, false)}); err != nil {
				return nil, err
			}
		}
		if slices.Contains(o.StopTokens, id) {
			res.FinishReason = FinishStop
			break
		}
		sampler.Observe(id)
		piece = dec.Append(piece[:0], id)
		text, stopped := stop.add(string(piece))
		if err := send(text); err != nil {
			return nil, err
		}
		if stopped {
			res.FinishReason = FinishStop
			break
		}
		if step == maxNew-1 {
			break // no forward pass for a token that will not be used
		}
		next[0] = id
		hidden, err := s.Forward(ctx, model.Input{IDs: next})
		if err != nil {
			if ctx.Err() != nil {
				res.FinishReason = FinishCancelled // the session is torn: its owner restores it
				break
			}
			return nil, err
		}
		last = hidden
	}
	if res.FinishReason != FinishStop {
		piece = dec.Flush(piece[:0])
		text, _ := stop.add(string(piece))
		if err := send(text + stop.flush()); err != nil {
			return nil, err
		}
	}
	res.Text = stop.final()
	return res, nil
}

// ErrPromptTooLong is returned when a prompt does not fit the context.
var ErrPromptTooLong = errors.New("prompt is longer than the context")

// Prefill runs the prompt's tokens from s.Pos() on (the session holds the
// ones before, from an earlier turn or a shared prefix) through s in chunks
// of at most chunk tokens, never splitting an image block (a chunk grows to
// the end of an image it would cut), and returns the final hidden state of
// the last token. Image features are asked of p.Image as the chunks reach
// them. progress, when set, is called after each chunk with the tokens done
// and the total. A cancelled ctx stops it within one layer, returning ctx's
// error; the session is then torn (see model.Session.Forward).
func Prefill(ctx context.Context, s *model.Session, p *model.Prompt, chunk int, progress ...func(done, total int)) ([]float32, error) {
	h := s.Model().Config.Text.HiddenSize
	var last []float32
	err := prefill(ctx, s, p, chunk, func(pos int, hidden []float32, rows int) {
		last = hidden[(rows-1)*h : rows*h]
		for _, f := range progress {
			f(pos+rows, len(p.IDs))
		}
	})
	if err != nil {
		return nil, err
	}
	return last, nil
}

// prefill runs the prompt from s.Pos() in chunks, handing each chunk's
// final-normed hidden states (rows of them, from position pos) to done.
func prefill(ctx context.Context, s *model.Session, p *model.Prompt, chunk int, done func(pos int, hidden []float32, rows int)) error {
	n, from := len(p.IDs), s.Pos()
	switch {
	case chunk <= 0:
		return fmt.Errorf("chunk size %d", chunk)
	case from >= n:
		return fmt.Errorf("the session already holds %d tokens of this %d-token prompt: nothing to prefill", from, n)
	case n >= s.Capacity():
		return fmt.Errorf("%w: %d tokens, context %d (and at least one to generate)", ErrPromptTooLong, n, s.Capacity())
	}
	h := s.Model().Config.Text.HiddenSize
	var embeds []float32
	for pos := from; pos < n; {
		end := p.ChunkEnd(pos, chunk)
		in, err := p.Input(ctx, pos, end, h, embeds)
		if err != nil {
			return err
		}
		if in.Embeds != nil {
			embeds = in.Embeds
		}
		out, err := s.Forward(ctx, in)
		if err != nil {
			return err
		}
		done(pos, out, end-pos)
		pos = end
	}
	return nil
}
