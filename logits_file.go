package medgemma

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The log-probability file of llama-perplexity's --kl-divergence-base (what
// `medgemma perplexity --save-logits` writes and --kl-base reads, so that
// either tool can compare with the other's): the bytes "_logits_"; n_ctx
// (uint32), n_vocab and n_chunk (int32); the n_chunk*n_ctx token ids
// (int32); then per chunk, per scored position (n_ctx - 1 - n_ctx/2 of
// them), a row of 2*((n_vocab+1)/2)+4 uint16: a float32 scale and a
// float32 minimum log-probability, then each token's log-probability as
// minimum + scale*q (q 0 for anything more than 16 below the largest
// logit). All little-endian.

const logitsMagic = "_logits_"

// Limits a logits file's header must respect before anything is sized by
// it.
const (
	maxLogitsContext = 1 << 17 // the models' context
	maxLogitsTokens  = 1 << 28 // chunks x context
)

// logitsHeader is a logits file's header.
type logitsHeader struct {
	ctx, vocab, chunks int
	tokens             []int32
}

// rowLen is the uint16 of one scored position's row.
func (h *logitsHeader) rowLen() int { return 2*((h.vocab+1)/2) + 4 }

// writeLogitsHeader writes the header for chunks chunks of ctx tokens.
func writeLogitsHeader(w io.Writer, h *logitsHeader) error {
	buf := make([]byte, 0, 20+4*len(h.tokens))
	buf = append(buf, logitsMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(h.ctx))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(h.vocab))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(h.chunks))
	for _, id := range h.tokens {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(id))
	}
	_, err := w.Write(buf)
	return err
}

// readLogitsHeader reads and checks a header: the context, vocabulary and
// chunk count in range, every token id below the vocabulary. The tokens are
// read as they come, so a header claiming more than the file holds fails at
// its end, not by allocating what it claims.
func readLogitsHeader(r io.Reader) (*logitsHeader, error) {
	var fixed [20]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, fmt.Errorf("logits file: header: %w", noEOF(err))
	}
	if string(fixed[:8]) != logitsMagic {
		return nil, errors.New(`logits file: does not start with "_logits_" (not a llama-perplexity or medgemma log-probability file)`)
	}
	le := binary.LittleEndian
	h := &logitsHeader{ctx: int(le.Uint32(fixed[8:])), vocab: int(int32(le.Uint32(fixed[12:]))), chunks: int(int32(le.Uint32(fixed[16:])))}
	switch {
	case h.ctx < 4 || h.ctx > maxLogitsContext:
		return nil, fmt.Errorf("logits file: context %d is not in 4..%d", h.ctx, maxLogitsContext)
	case h.vocab < 1 || h.vocab > 1<<24:
		return nil, fmt.Errorf("logits file: vocabulary of %d", h.vocab)
	case h.chunks < 1 || h.chunks*h.ctx > maxLogitsTokens:
		return nil, fmt.Errorf("logits file: %d chunks of %d tokens", h.chunks, h.ctx)
	}
	n := h.chunks * h.ctx
	h.tokens = make([]int32, 0, min(n, 1<<16))
	buf := make([]byte, 4*min(n, 1<<14))
	for len(h.tokens) < n {
		b := buf[:4*min(n-len(h.tokens), len(buf)/4)]
		if got, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("logits file: token %d of %d: %w", len(h.tokens)+got/4, n, noEOF(err))
		}
		for i := 0; i < len(b); i += 4 {
			id := int32(le.Uint32(b[i:]))
			if id < 0 || int(id) >= h.vocab {
				return nil, fmt.Errorf("logits file: token %d is id %d, outside the vocabulary of %d", len(h.tokens), id, h.vocab)
			}
			h.tokens = append(h.tokens, id)
		}
	}
	return h, nil
}

// noEOF turns a clean end of file into an unexpected one: a logits file
// never ends where a read starts.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// logProbRow is one scored position's log-probabilities as the file keeps
// them.
type logProbRow struct {
	scale, min float32
	q          []uint16
}

// at is token i's log-probability.
func (r *logProbRow) at(i int) float32 { return r.scale*float32(r.q[i]) + r.min }

// encodeLogProbs writes logits' log-probabilities into row (rowLen uint16)
// as llama-perplexity does: the range down to 16 below the largest logit
// in 65535 steps; lse is the logits' log-sum-exp.
func encodeLogProbs(row []uint16, logits []float32, lse float64) {
	mx, mn := logits[0], logits[0]
	for _, v := range logits[1:] {
		mx, mn = max(mx, v), min(mn, v)
	}
	mn = max(mn, mx-16)
	minLogProb := float32(float64(mn) - lse)
	scale := (mx - mn) / 65535
	row[0], row[1] = uint16(math.Float32bits(scale)), uint16(math.Float32bits(scale)>>16)
	row[2], row[3] = uint16(math.Float32bits(minLogProb)), uint16(math.Float32bits(minLogProb)>>16)
	q := row[4 : 4+len(logits)]
	if scale == 0 {
		clear(q)
		return
	}
	inv := 1 / scale
	for i, v := range logits {
		if v > mn {
			q[i] = uint16(min(65535, math.RoundToEven(float64(inv*(v-mn)))))
		} else {
			q[i] = 0
		}
	}
	clear(row[4+len(logits):])
}

// decodeLogProbRow views a file row.
func decodeLogProbRow(row []uint16, vocab int) logProbRow {
	return logProbRow{
		scale: math.Float32frombits(uint32(row[0]) | uint32(row[1])<<16),
		min:   math.Float32frombits(uint32(row[2]) | uint32(row[3])<<16),
		q:     row[4 : 4+vocab],
	}
}

// logitsRowIO reads or writes rows of uint16 through a buffer.
type logitsRowIO struct {
	r   *bufio.Reader
	w   *bufio.Writer
	buf []byte
}

func (f *logitsRowIO) write(row []uint16) error {
	if cap(f.buf) < 2*len(row) {
		f.buf = make([]byte, 2*len(row))
	}
	b := f.buf[:2*len(row)]
	for i, v := range row {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	_, err := f.w.Write(b)
	return err
}

func (f *logitsRowIO) read(row []uint16) error {
	if cap(f.buf) < 2*len(row) {
		f.buf = make([]byte, 2*len(row))
	}
	b := f.buf[:2*len(row)]
	if _, err := io.ReadFull(f.r, b); err != nil {
		return noEOF(err)
	}
	for i := range row {
		row[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return nil
}
