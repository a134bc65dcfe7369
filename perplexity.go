package medgemma

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/medgemma/medgemma/kernels"
	"github.com/medgemma/medgemma/model"
)

// PerplexityOptions control Model.Perplexity.
type PerplexityOptions struct {
	// Context is the tokens of each chunk (llama-perplexity's -c; default
	// 512). The text is cut into whole chunks, each evaluated on its own
	// from an empty cache, its first token replaced by <bos>; the second
	// half of each chunk is scored (every position there has at least half
	// a context before it).
	Context int
	// Chunks evaluates at most this many chunks (0: all the text holds).
	Chunks int
	// SaveLogits receives every scored position's log-probabilities in
	// llama-perplexity's --kl-divergence-base format (logits_file.go), for a
	// later run's KLBase.
	SaveLogits io.Writer
	// KLBase is such a file (written by --save-logits, or by llama.cpp):
	// its tokens and chunks are evaluated (the ids passed are ignored) and
	// each position's distribution is compared with the file's (KL
	// divergence, the same top token, the change in the probability of the
	// right token).
	KLBase io.Reader
	// OnChunk, if set, is called after each chunk with the result so far.
	OnChunk func(r *PerplexityResult)
}

// PerplexityResult is what Perplexity measured, as llama-perplexity
// reports it.
type PerplexityResult struct {
	Context int `json:"context"`
	Chunks  int `json:"chunks"` // evaluated so far
	// OfChunks is the chunks to evaluate in all.
	OfChunks int `json:"of_chunks"`
	Scored   int `json:"scored_tokens"`
	// PPL is exp(mean negative log-likelihood), PPLErr its standard error.
	PPL    float64 `json:"ppl"`
	PPLErr float64 `json:"ppl_err"`
	// KL compares with KLBase (nil without one).
	KL *KLStats `json:"kl,omitempty"`

	nll, nll2 float64
}

// KLStats compare a model's distributions with a base run's, position by
// position, as llama-perplexity's KL-divergence mode prints them (Δp is
// the change in the probability of the token that follows; uncertainties
// are standard errors).
type KLStats struct {
	BasePPL        float64 `json:"base_ppl"`
	BasePPLErr     float64 `json:"base_ppl_err"`
	LogPPLCor      float64 `json:"ln_ppl_correlation"`
	LogPPLRatio    float64 `json:"mean_ln_ppl_ratio"`
	LogPPLRatioErr float64 `json:"mean_ln_ppl_ratio_err"`
	PPLRatio       float64 `json:"ppl_ratio"`
	PPLRatioErr    float64 `json:"ppl_ratio_err"`
	PPLDiff        float64 `json:"ppl_diff"`
	PPLDiffErr     float64 `json:"ppl_diff_err"`

	KLDMean float64 `json:"kld_mean"`
	KLDErr  float64 `json:"kld_err"`
	// KLDPercentiles: maximum, 99.9%, 99%, 95%, 90%, median, 10%, 5%, 1%,
	// 0.1%, minimum.
	KLDPercentiles []float64 `json:"kld_percentiles"`

	DeltaPMean float64 `json:"delta_p_mean"`
	DeltaPErr  float64 `json:"delta_p_err"`
	// DeltaPPercentiles: maximum, 99.9%, 99%, 95%, 90%, 75%, median, 25%,
	// 10%, 5%, 1%, 0.1%, minimum.
	DeltaPPercentiles []float64 `json:"delta_p_percentiles"`
	DeltaPRMS         float64   `json:"delta_p_rms"`
	DeltaPRMSErr      float64   `json:"delta_p_rms_err"`

	SameTop    float64 `json:"same_top"`
	SameTopErr float64 `json:"same_top_err"`

	// Sums over the positions, and each position's KL divergence and Δp.
	nllBase, nllBase2, nllNLLBase float64
	kldSum, kld2, pd, pd2, pd4    float64
	count, sameTop                float64
	kld, pdiff                    []float64
}

// KLDPercentileNames and DeltaPPercentileNames label the percentiles.
var (
	KLDPercentileNames    = []string{"Maximum", "99.9%", "99.0%", "95.0%", "90.0%", "Median", "10.0%", " 5.0%", " 1.0%", " 0.1%", "Minimum"}
	DeltaPPercentileNames = []string{"Maximum", "99.9%", "99.0%", "95.0%", "90.0%", "75.0%", "Median", "25.0%", "10.0%", " 5.0%", " 1.0%", " 0.1%", "Minimum"}
	kldFractions          = []float64{1, 0.999, 0.99, 0.95, 0.9, 0.5, 0.1, 0.05, 0.01, 0.001, 0}
	deltaPFractions       = []float64{1, 0.999, 0.99, 0.95, 0.9, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01, 0.001, 0}
)

// ErrTextTooShort is returned when the text has fewer than two chunks of
// tokens.
var ErrTextTooShort = errors.New("text too short for perplexity")

// Perplexity evaluates the model on ids (a tokenized text, <bos> first:
// Tokenizer().Encode(text, true)) as llama-perplexity does, with the same
// numbers: the PPL of each chunk's second half, and with KLBase the
// comparison with a base model.
func (m *Model) Perplexity(ctx context.Context, ids []int32, opts PerplexityOptions) (*PerplexityResult, error) {
	cfg := m.model.Config.Text
	vocab := cfg.VocabSize
	n := opts.Context
	if n == 0 {
		n = 512
	}
	var base *logitsHeader
	var baseRows logitsRowIO
	if opts.KLBase != nil {
		br := bufio.NewReaderSize(opts.KLBase, 1<<20)
		h, err := readLogitsHeader(br)
		if err != nil {
			return nil, err
		}
		if h.vocab != vocab {
			return nil, fmt.Errorf("logits file: vocabulary of %d, the model's is %d", h.vocab, vocab)
		}
		if opts.Context != 0 && opts.Context != h.ctx {
			return nil, fmt.Errorf("logits file: context %d, asked for %d", h.ctx, opts.Context)
		}
		base, baseRows.r, n, ids = h, br, h.ctx, h.tokens
	}
	switch {
	case n < 4 || n > cfg.MaxPositionEmbeddings:
		return nil, fmt.Errorf("%w: context %d is not in 4..%d", ErrInvalidOptions, n, cfg.MaxPositionEmbeddings)
	case opts.Chunks < 0:
		return nil, fmt.Errorf("%w: chunks %d", ErrInvalidOptions, opts.Chunks)
	case len(ids) < 2*n:
		return nil, fmt.Errorf("%w: %d tokens; a context of %d needs at least %d", ErrTextTooShort, len(ids), n, 2*n)
	}
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			return nil, fmt.Errorf("%w: token %d is id %d, outside the vocabulary of %d", ErrInvalidOptions, i, id, vocab)
		}
	}
	chunks := len(ids) / n
	if opts.Chunks > 0 {
		chunks = min(chunks, opts.Chunks)
	}
	if base != nil {
		chunks = min(chunks, base.chunks)
	}
	h := &logitsHeader{ctx: n, vocab: vocab, chunks: chunks, tokens: ids[:chunks*n]}
	var save logitsRowIO
	if opts.SaveLogits != nil {
		save.w = bufio.NewWriterSize(opts.SaveLogits, 1<<20)
		if err := writeLogitsHeader(save.w, h); err != nil {
			return nil, err
		}
	}
	s, err := m.takeSession(n)
	if err != nil {
		return nil, err
	}
	defer m.putSession(s)
	defer m.track(s)()

	res := &PerplexityResult{Context: n, OfChunks: chunks}
	if base != nil {
		res.KL = &KLStats{}
	}
	first := n / 2
	width := cfg.HiddenSize
	rows := logitRows
	logits := make([]float32, rows*vocab)
	row := make([]uint16, h.rowLen())
	baseRow := make([]uint16, h.rowLen())
	chunk := make([]int32, n)
	prefix := m.tok.SpecialPrefix() // <bos>, which each chunk starts with
	for c := range chunks {
		copy(chunk, ids[c*n:(c+1)*n])
		if len(prefix) == 1 {
			chunk[0] = prefix[0]
		}
		s.Reset()
		for pos := 0; pos < n; pos += prefillChunk {
			end := min(pos+prefillChunk, n)
			hidden, err := s.Forward(ctx, model.Input{IDs: chunk[pos:end]})
			if err != nil {
				return nil, err
			}
			// Positions first..n-2 predict the token after them.
			for r0 := max(pos, first); r0 < min(end, n-1); r0 += rows {
				r1 := min(r0+rows, end, n-1)
				s.LogitsRows(logits, hidden[(r0-pos)*width:(r1-pos)*width], r1-r0)
				for p := r0; p < r1; p++ {
					lg := logits[(p-r0)*vocab : (p-r0+1)*vocab]
					next := int(chunk[p+1])
					lse := kernels.LogSumExp(lg)
					nll := lse - float64(lg[next])
					res.nll += nll
					res.nll2 += nll * nll
					res.Scored++
					if save.w != nil {
						encodeLogProbs(row, lg, lse)
						if err := save.write(row); err != nil {
							return nil, err
						}
					}
					if base != nil {
						if err := baseRows.read(baseRow); err != nil {
							return nil, fmt.Errorf("logits file: chunk %d: %w", c, err)
						}
						res.KL.add(lg, lse, nll, next, decodeLogProbRow(baseRow, vocab))
					}
				}
			}
		}
		res.Chunks = c + 1
		res.finish()
		if opts.OnChunk != nil {
			opts.OnChunk(res)
		}
	}
	if save.w != nil {
		if err := save.w.Flush(); err != nil {
			return nil, err
		}
	}
	if res.KL != nil {
		res.KL.percentiles()
	}
	return res, nil
}

// logitRows bounds the logits computed at once (1 MB each for MedGemma's
// vocabulary).
const logitRows = 16

// meanAndUncertainty is a mean and its standard error from a sum and a sum
// of squares, as llama-perplexity computes them (no error below 11 values).
func meanAndUncertainty(sum, sum2, count float64) (float64, float64) {
	if count < 1 {
		return 0, 0
	}
	f := sum / count
	df := sum2/count - f*f
	if df > 0 && count > 10 {
		return f, math.Sqrt(df / (count - 1))
	}
	return f, 0
}

// finish updates the PPL and, with a base, the running KL statistics.
func (r *PerplexityResult) finish() {
	logPPL, logErr := meanAndUncertainty(r.nll, r.nll2, float64(r.Scored))
	r.PPL = math.Exp(logPPL)
	r.PPLErr = r.PPL * logErr
	if r.KL != nil {
		r.KL.finish(r, logPPL, logErr)
	}
}

// add compares one position: logits (log-sum-exp lse; negative
// log-likelihood nll of the next token) with the base's row.
func (k *KLStats) add(logits []float32, lse, nll float64, next int, b logProbRow) {
	nllBase := -float64(b.at(next))
	k.nllBase += nllBase
	k.nllBase2 += nllBase * nllBase
	k.nllNLLBase += nll * nllBase
	top, topBase := 0, 0
	var kld float64
	var maxBase float32
	for i, v := range logits {
		if v > logits[top] {
			top = i
		}
		lb := b.at(i)
		if i == 0 || lb > maxBase {
			topBase, maxBase = i, lb
		}
		if lb > -16 {
			kld += math.Exp(float64(lb)) * (float64(lb) - (float64(v) - lse))
		}
	}
	k.kldSum += kld
	k.kld2 += kld * kld
	k.kld = append(k.kld, kld)
	if top == topBase {
		k.sameTop++
	}
	pd := math.Exp(-nll) - math.Exp(-nllBase)
	k.pd += pd
	k.pd2 += pd * pd
	k.pd4 += pd * pd * pd * pd
	k.pdiff = append(k.pdiff, pd)
	k.count++
}

// finish computes the running statistics from the sums, r's among them
// (its log-PPL and error given).
func (k *KLStats) finish(r *PerplexityResult, logPPL, logErr float64) {
	n := k.count
	logBase, logBaseErr := meanAndUncertainty(k.nllBase, k.nllBase2, n)
	k.BasePPL = math.Exp(logBase)
	k.BasePPLErr = k.BasePPL * logBaseErr
	cov := 0.0 // of the two log-likelihoods' means
	if n >= 10 {
		cov = (k.nllNLLBase/n - r.nll/n*(k.nllBase/n)) / (n - 1)
	}
	if logErr > 0 && logBaseErr > 0 {
		k.LogPPLCor = cov / (logErr * logBaseErr)
	}
	k.LogPPLRatio = logPPL - logBase
	k.LogPPLRatioErr = math.Sqrt(max(0, logErr*logErr+logBaseErr*logBaseErr-2*cov))
	k.PPLRatio = math.Exp(k.LogPPLRatio)
	k.PPLRatioErr = k.PPLRatio * k.LogPPLRatioErr
	k.PPLDiff = r.PPL - k.BasePPL
	k.PPLDiffErr = math.Sqrt(max(0, r.PPLErr*r.PPLErr+k.BasePPLErr*k.BasePPLErr-2*r.PPL*k.BasePPL*cov))
	k.KLDMean, k.KLDErr = meanAndUncertainty(k.kldSum, k.kld2, n)
	k.DeltaPMean, k.DeltaPErr = meanAndUncertainty(k.pd, k.pd2, n)
	mse, mseErr := meanAndUncertainty(k.pd2, k.pd4, n)
	k.DeltaPRMS = math.Sqrt(mse)
	if k.DeltaPRMS > 0 {
		k.DeltaPRMSErr = 0.5 / k.DeltaPRMS * mseErr
	}
	if n > 1 {
		k.SameTop = k.sameTop / n
		k.SameTopErr = math.Sqrt(k.SameTop * (1 - k.SameTop) / (n - 1))
	}
}

// percentiles sorts the per-position values and fills the percentiles as
// llama-perplexity interpolates them.
func (k *KLStats) percentiles() {
	if len(k.kld) == 0 {
		return
	}
	slices.Sort(k.kld)
	slices.Sort(k.pdiff)
	pick := func(v []float64, fractions []float64) []float64 {
		out := make([]float64, len(fractions))
		for i, f := range fractions {
			switch {
			case f == 0.5 && len(v)%2 == 0:
				out[i] = 0.5 * (v[len(v)/2] + v[len(v)/2-1])
			case f == 0.5:
				out[i] = v[len(v)/2]
			default:
				p := f * float64(len(v)-1)
				ip := int(p)
				p -= float64(ip)
				out[i] = (1-p)*v[ip] + p*v[min(ip+1, len(v)-1)]
			}
		}
		return out
	}
	k.KLDPercentiles = pick(k.kld, kldFractions)
	k.DeltaPPercentiles = pick(k.pdiff, deltaPFractions)
}
