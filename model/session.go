package model

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Session is one sequence run on its own: a KV pool of its own sized for
// it, its blocks, and the scratch of a pass of up to maxChunk tokens, so
// that decoding allocates nothing per token. Its pool keeps the blocks of
// earlier sequences cached (Reset and Match), which is how the next turn
// of a conversation reuses the previous one. A Session is not safe for
// concurrent use.
type Session struct {
	m        *Model
	pool     *KVPool
	kv       *SeqKV
	ws       *Workspace
	chunks   [1]Chunk
	capacity int
	maxChunk int
	// Hook receives the intermediate tensors of each pass (see Hook).
	Hook Hook
}

// NewSession prepares a sequence of at most capacity tokens, processed in
// chunks of at most maxChunk tokens.
func (m *Model) NewSession(capacity, maxChunk int) (*Session, error) {
	if capacity <= 0 || maxChunk <= 0 {
		return nil, errors.New("capacity and chunk size must be positive")
	}
	t := &m.Config.Text
	if capacity > t.MaxPositionEmbeddings {
		return nil, fmt.Errorf("context of %d tokens is over the model's %d", capacity, t.MaxPositionEmbeddings)
	}
	maxChunk = min(maxChunk, capacity)
	B := DefaultBlockSize
	// Every position in the full-attention part; in the sliding part the
	// window and a chunk (a block more for each, and for a copy on write).
	pool, err := m.NewKVPool(PoolOptions{BlockSize: B, FullBlocks: capacity/B + 2,
		SlidingBlocks: min(capacity, t.SlidingWindow+maxChunk)/B + 4})
	if err != nil {
		return nil, err
	}
	return &Session{m: m, pool: pool, kv: pool.NewSeq(), ws: m.NewWorkspace(maxChunk), capacity: capacity, maxChunk: maxChunk}, nil
}

// Model is the model the session runs.
func (s *Session) Model() *Model { return s.m }

// Capacity is the most tokens the session holds.
func (s *Session) Capacity() int { return s.capacity }

// Pos is the number of tokens processed so far.
func (s *Session) Pos() int { return s.kv.len }

// KVBytes is the memory of the KV blocks the sequence holds.
func (s *Session) KVBytes() int64 { return s.kv.Bytes() }

// PoolBytes is the memory of the session's KV pool: the blocks it holds
// and those it keeps cached.
func (s *Session) PoolBytes() int64 { return s.pool.Stats().Bytes }

// Reset starts a new sequence; the old one's blocks stay cached in the
// session's pool for Match.
func (s *Session) Reset() { s.kv.Release() }

// Match makes an empty session start with the longest prefix of p still
// cached in its pool (the previous turn of a conversation), keeping at
// least the last prompt token to compute; it returns the tokens reused.
func (s *Session) Match(p *Prompt) int { return s.kv.Match(p, len(p.IDs)-1) }

// Forward runs a chunk through the decoder, appends it to the sequence, and
// returns the final-normed hidden states (n x hidden_size), valid until the
// next call. A cancelled ctx stops it between layers with ctx's error, the
// sequence unchanged.
func (s *Session) Forward(ctx context.Context, in Input) ([]float32, error) {
	n := len(in.IDs)
	switch {
	case n > s.maxChunk:
		return nil, fmt.Errorf("chunk of %d tokens is over the session's %d", n, s.maxChunk)
	case s.kv.len+n > s.capacity:
		return nil, fmt.Errorf("%d tokens would exceed the context of %d", s.kv.len+n, s.capacity)
	}
	s.ws.Hook = s.Hook
	s.chunks[0] = Chunk{KV: s.kv, In: in}
	out, err := s.m.Forward(ctx, s.ws, s.chunks[:])
	s.chunks[0] = Chunk{}
	return out, err
}

// Snapshot is a point of a session's sequence to return to: it holds the
// sequence's blocks (a block written after it is copied first).
type Snapshot struct{ kv *SeqKV }

// Snapshot captures the sequence as it is now.
func (s *Session) Snapshot() *Snapshot { return &Snapshot{s.kv.Fork()} }

// Restore returns the sequence to a snapshot taken from this session.
func (s *Session) Restore(snap *Snapshot) {
	s.kv.Release()
	s.kv = snap.kv.Fork()
}

// Release gives a snapshot's blocks back.
func (snap *Snapshot) Release() { snap.kv.Release() }

// Logits computes the logits of one hidden state (len hidden_size) into out
// (len vocab_size).
func (s *Session) Logits(out, hidden []float32) { s.m.Logits(out, hidden, 1) }

// LogitsRows computes the logits of n hidden states (n x hidden_size) into
// out (n x vocab_size) with one pass over the LM head.
func (s *Session) LogitsRows(out, hidden []float32, n int) { s.m.Logits(out, hidden, n) }

// Logits computes the logits of n hidden states (n x hidden_size) into out
// (n x vocab_size), reading the LM head once for all of them.
func (m *Model) Logits(out, hidden []float32, n int) {
	v := m.Config.Text.VocabSize
	m.pool.MatMul(out[:n*v], hidden[:n*m.Config.Text.HiddenSize], n, &m.text.lmHead)
	if c := m.Config.Text.FinalLogitSoftcapping; c > 0 {
		for i, x := range out[:n*v] {
			out[i] = float32(math.Tanh(float64(x)/c) * c)
		}
	}
}
