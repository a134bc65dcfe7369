package generate

import (
	"context"
	"fmt"

	"github.com/medgemma/medgemma/model"
	"github.com/medgemma/medgemma/tokenizer"
)

// logitRows is how many positions' logits PrefillLogprobs computes at once
// (each row is vocab_size floats: 1 MB for Gemma 3).
const logitRows = 16

// PrefillLogprobs is Prefill that also scores the prompt: for every token
// after the first, its logprob given the tokens before it and the top most
// likely alternatives (OpenAI's completions with echo, which log-likelihood
// evaluations such as lm-evaluation-harness use). The session must be empty:
// a reused prefix has no logits. It returns the scores (len(p.IDs)-1 of
// them) and the final hidden state of the last token.
func PrefillLogprobs(ctx context.Context, s *model.Session, tok *tokenizer.Tokenizer, p *model.Prompt, chunk, top int) ([]StepLogprobs, []float32, error) {
	n := len(p.IDs)
	switch {
	case s.Pos() != 0:
		return nil, nil, fmt.Errorf("scoring a prompt needs an empty session (it holds %d tokens)", s.Pos())
	case top < 0 || top > MaxTopLogprobs:
		return nil, nil, fmt.Errorf("top logprobs %d must be in 0..%d", top, MaxTopLogprobs)
	}
	cfg := s.Model().Config.Text
	h, vocab := cfg.HiddenSize, cfg.VocabSize
	scores := make([]StepLogprobs, 0, max(n-1, 0))
	logits := make([]float32, logitRows*vocab)
	var alts []TokenLogprob
	var scratch []int32
	var last []float32
	err := prefill(ctx, s, p, chunk, func(pos int, hidden []float32, rows int) {
		// Row i predicts token pos+i+1.
		for r0 := 0; r0 < rows; r0 += logitRows {
			r1 := min(r0+logitRows, rows)
			if pos+r0+1 >= n {
				break
			}
			s.LogitsRows(logits, hidden[r0*h:r1*h], r1-r0)
			for i := r0; i < r1 && pos+i+1 < n; i++ {
				next := p.IDs[pos+i+1]
				var lp float32
				lp, alts, scratch = Logprobs(logits[(i-r0)*vocab:(i-r0+1)*vocab], next, top, alts, scratch)
				st := StepLogprobs{Token: next, Text: tok.Decode([]int32{next}, false), Logprob: lp}
				for _, a := range alts {
					st.Top = append(st.Top, AltLogprob{a.Token, tok.Decode([]int32{a.Token}, false), a.Logprob})
				}
				scores = append(scores, st)
			}
		}
		last = hidden[(rows-1)*h : rows*h]
	})
	if err != nil {
		return nil, nil, err
	}
	return scores, last, nil
}
