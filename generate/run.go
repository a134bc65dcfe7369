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

// Generation is one sequence's generation, a step at a time: given the
// logits of its last position it samples the next token, with its logprobs
// when asked, holds back text that could still be the start of a stop
// string or an incomplete character, and says when the sequence is done.
// Run drives one over a Session; a batch scheduler drives many, one step of
// each per pass over the weights. Not safe for concurrent use.
type Generation struct {
	o       Options
	tok     *tokenizer.Tokenizer
	sampler *Sampler
	dec     *tokenizer.StreamDecoder
	stop    *stopper
	maxNew  int
	piece   []byte
	alts    []TokenLogprob
	scratch []int32
	res     *Result
	done    bool
	con     *constraint // nil without a grammar
	flush   bool        // ended at a complete grammar: nothing held back is cut
	err     error
}

// NewGeneration prepares a generation of at most maxNew tokens after
// prompt (whose ids the repetition penalty counts), over a vocabulary of
// the given size.
func NewGeneration(o Options, tok *tokenizer.Tokenizer, vocab int, prompt []int32, maxNew int) (*Generation, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if maxNew <= 0 {
		return nil, errors.New("nothing left to generate: the prompt fills the context")
	}
	g := &Generation{o: o, tok: tok, sampler: NewSampler(o, vocab, prompt), dec: tok.NewStreamDecoder(true),
		stop: newStopper(o.StopStrings), maxNew: min(o.MaxNewTokens, maxNew), res: &Result{FinishReason: FinishLength}}
	if o.Grammar != nil {
		g.con = newConstraint(&o, tok)
	}
	return g, nil
}

// Err is what ended the generation when it was not the model: a grammar
// past its limits on work (the generation then ends, finish reason
// "error").
func (g *Generation) Err() error { return g.err }

// FinishError is the finish reason of a generation ended by Err.
const FinishError = "error"

// Step samples the next token from logits (left as they are; a grammar
// masks a copy). It returns the token, its logprobs (the token always; its
// text and the rest when Options.Logprobs asks), the text now final (often
// "", while held back), and whether generation has ended with it (a stop
// token, a stop string, the length, a complete grammar, or an error, then
// in Err): the token is then not to be fed back. The token is -1 when none
// was sampled (an error before sampling). Step after the end does nothing.
func (g *Generation) Step(logits []float32) (id int32, st StepLogprobs, text string, done bool) {
	if g.done {
		return 0, st, "", true
	}
	if g.con != nil {
		masked, err := g.con.apply(logits, g.o.StopTokens)
		if err != nil {
			g.err, g.res.FinishReason, g.done = err, FinishError, true
			return -1, st, "", true
		}
		logits = masked
	}
	id = g.sampler.Sample(logits)
	g.res.Tokens = append(g.res.Tokens, id)
	st = StepLogprobs{Token: id}
	if g.o.Logprobs {
		st.Text = g.tok.Decode([]int32{id}, false)
		st.Logprob, g.alts, g.scratch = Logprobs(logits, id, g.o.TopLogprobs, g.alts, g.scratch)
		for _, a := range g.alts {
			st.Top = append(st.Top, AltLogprob{a.Token, g.tok.Decode([]int32{a.Token}, false), a.Logprob})
		}
		g.res.Logprobs = append(g.res.Logprobs, st)
	}
	if slices.Contains(g.o.StopTokens, id) {
		g.res.FinishReason, g.done = FinishStop, true
		return id, st, "", true
	}
	g.sampler.Observe(id)
	complete := false
	if g.con != nil {
		var err error
		if complete, err = g.con.accept(id); err != nil {
			g.err, g.res.FinishReason, g.done = err, FinishError, true
			return id, st, "", true
		}
	}
	g.piece = g.dec.Append(g.piece[:0], id)
	text, stopped := g.stop.add(string(g.piece))
	switch {
	case stopped:
		g.res.FinishReason, g.done = FinishStop, true
	case complete:
		g.res.FinishReason, g.done, g.flush = FinishStop, true, true
	case len(g.res.Tokens) >= g.maxNew:
		g.done = true // FinishLength
	}
	return id, st, text, g.done
}

// End ends the generation (for reason, when it is not one Step found) and
// returns the text held back that is now final.
func (g *Generation) End(reason string) string {
	if !g.done || reason != "" {
		if reason != "" {
			g.res.FinishReason = reason
		}
		g.done = true
	}
	if g.res.FinishReason == FinishStop && !g.flush || g.res.FinishReason == FinishError {
		return ""
	}
	g.piece = g.dec.Flush(g.piece[:0])
	text, _ := g.stop.add(string(g.piece))
	return text + g.stop.flush()
}

// Result is the generation so far; its text is final after End.
func (g *Generation) Result() *Result {
	g.res.Text = g.stop.final()
	return g.res
}

// Tokens is how many tokens have been generated.
func (g *Generation) Tokens() int { return len(g.res.Tokens) }

// Run generates after a prompt already run through s: last is the final
// hidden state of the prompt's last token, prompt its ids (for the
// repetition penalty). Cancelling ctx stops within one token.
func Run(ctx context.Context, s *model.Session, tok *tokenizer.Tokenizer, last []float32, prompt []int32, o Options, out Output) (*Result, error) {
	cfg := s.Model().Config.Text
	g, err := NewGeneration(o, tok, cfg.VocabSize, prompt, s.Capacity()-s.Pos())
	if err != nil {
		return nil, err
	}
	logits := make([]float32, cfg.VocabSize)
	next := make([]int32, 1) // the token fed back, one allocation for all steps
	start := time.Now()
	send := func(text string) error {
		if out.Text == nil || text == "" {
			return nil
		}
		return out.Text(text)
	}
	reason := ""
	for {
		if ctx.Err() != nil {
			reason = FinishCancelled
			break
		}
		s.Logits(logits, last)
		id, st, text, done := g.Step(logits)
		if out.Token != nil && id >= 0 {
			if st.Text == "" {
				st.Text = tok.Decode([]int32{id}, false)
			}
			if err := out.Token(st); err != nil {
				return nil, err
			}
		}
		if err := send(text); err != nil {
			return nil, err
		}
		if done {
			break
		}
		next[0] = id
		hidden, err := s.Forward(ctx, model.Input{IDs: next})
		if err != nil {
			if ctx.Err() != nil {
				reason = FinishCancelled
				break
			}
			return nil, err
		}
		last = hidden
	}
	if err := send(g.End(reason)); err != nil {
		return nil, err
	}
	if err := g.Err(); err != nil {
		return nil, err
	}
	res := g.Result()
	res.DecodeTime = time.Since(start)
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
