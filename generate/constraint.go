package generate

import (
	"errors"
	"math"
	"sync"

	"github.com/medgemma/medgemma/grammar"
	"github.com/medgemma/medgemma/tokenizer"
)

// Constrained decoding. With Options.Grammar set, each step's logits are
// masked to the tokens the grammar allows next (a copy: the caller's logits
// stay as they are), so the sampler, its penalties and the logprobs all see
// the constrained distribution; stop tokens keep their logits only where
// the grammar may end, and once it can go no further the generation ends
// (stop) with the token that completed it. With Options.Thought set
// (thinking), a leading thought between its two markers runs free and the
// grammar applies to the answer after it.

// vocabs caches each tokenizer's vocabulary index (a trie over its
// tokens' bytes, special tokens left out): built once per model.
var vocabs struct {
	sync.Mutex
	m map[*tokenizer.Tokenizer]*grammar.Vocab
}

// VocabOf returns tok's vocabulary index for grammar masks.
func VocabOf(tok *tokenizer.Tokenizer) *grammar.Vocab {
	vocabs.Lock()
	defer vocabs.Unlock()
	if v, ok := vocabs.m[tok]; ok {
		return v
	}
	toks := make([][]byte, tok.Len())
	for id := range toks {
		if !tok.IsSpecial(int32(id)) {
			toks[id] = tok.Bytes(int32(id))
		}
	}
	v := grammar.NewVocab(toks)
	if vocabs.m == nil {
		vocabs.m = map[*tokenizer.Tokenizer]*grammar.Vocab{}
	}
	vocabs.m[tok] = v
	return v
}

// Thought phases.
const (
	beforeThought = iota // the first token: a thought may start
	inThought            // free until the end marker
	answering            // the grammar applies
)

// constraint is one generation's grammar state.
type constraint struct {
	m       *grammar.Matcher
	v       *grammar.Vocab
	thought []int32 // start and end markers, or nil
	phase   int
	mask    []uint64
	masked  []float32 // the logits, masked
	saved   []float32 // stop tokens' logits
	tok     *tokenizer.Tokenizer
}

func newConstraint(o *Options, tok *tokenizer.Tokenizer) *constraint {
	c := &constraint{m: o.Grammar.NewMatcher(), v: VocabOf(tok), thought: o.Thought, tok: tok, phase: answering}
	if len(o.Thought) == 2 {
		c.phase = beforeThought
	}
	c.mask = make([]uint64, c.v.MaskWords())
	return c
}

// negInf fills a mask word's 64 logits at once.
var negInf = func() (v [64]float32) {
	for i := range v {
		v[i] = float32(math.Inf(-1))
	}
	return
}()

// errNoToken is a grammar that allows nothing where it cannot end.
var errNoToken = errors.New("the grammar allows no token here and cannot end")

// apply returns logits masked to what may come next.
func (c *constraint) apply(logits []float32, stops []int32) ([]float32, error) {
	if cap(c.masked) < len(logits) {
		c.masked = make([]float32, len(logits))
	}
	w := c.masked[:len(logits)]
	copy(w, logits)
	if c.phase == inThought {
		for _, s := range stops {
			if int(s) < len(w) {
				w[s] = float32(math.Inf(-1)) // the answer must come
			}
		}
		return w, nil
	}
	c.saved = c.saved[:0]
	for _, s := range stops {
		if s >= 0 && int(s) < len(w) {
			c.saved = append(c.saved, w[s])
		}
	}
	if err := c.m.Mask(c.v, c.mask); err != nil {
		return nil, err
	}
	inf := float32(math.Inf(-1))
	any := false
	for i, bits := range c.mask {
		base := i * 64
		switch {
		case bits == ^uint64(0):
			any = true
		case bits == 0 && base+64 <= len(w):
			copy(w[base:base+64], negInf[:])
		default:
			for b := 0; b < 64 && base+b < len(w); b++ {
				if bits&(1<<b) == 0 {
					w[base+b] = inf
				} else {
					any = true
				}
			}
		}
	}
	for id := len(c.mask) * 64; id < len(w); id++ {
		w[id] = inf // ids past the tokenizer's
	}
	if c.m.Done() {
		i := 0
		for _, s := range stops {
			if s >= 0 && int(s) < len(w) {
				w[s] = c.saved[i]
				i++
			}
		}
		any = any || i > 0
	}
	if c.phase == beforeThought && int(c.thought[0]) < len(w) {
		w[c.thought[0]] = logits[c.thought[0]]
		any = true
	}
	if !any {
		return nil, errNoToken
	}
	return w, nil
}

// accept moves past the sampled token (not a stop token) and reports
// whether the grammar is complete with it: nothing may follow.
func (c *constraint) accept(id int32) (complete bool, err error) {
	switch c.phase {
	case beforeThought:
		if id == c.thought[0] {
			c.phase = inThought
			return false, nil
		}
		c.phase = answering
	case inThought:
		if id == c.thought[1] {
			c.phase = answering
		}
		return false, nil
	}
	if !c.m.Advance(c.v.Token(id)) {
		if err := c.m.Err(); err != nil {
			return false, err
		}
		return false, errors.New("a token outside the grammar was sampled") // masks make this impossible
	}
	return c.m.Done() && !c.m.More(), nil
}
