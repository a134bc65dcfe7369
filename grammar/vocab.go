package grammar

import (
	"bytes"
	"slices"
)

// MaxTokenBytes is the longest token a vocabulary index holds; a longer
// one (no real vocabulary has one) is never allowed.
const MaxTokenBytes = 1024

// A Vocab indexes a vocabulary's byte strings for masks: a trie whose
// nodes are laid out depth first, so that a subtree is a run of nodes and
// a dead prefix skips its whole run. Build one per model and share it.
type Vocab struct {
	size   int
	tokens [][]byte
	nodes  []trieNode // nodes[0]: the empty prefix
	ids    []int32    // token ids grouped by node (trieNode.first, .n)
	depth  int        // the longest token
}

type trieNode struct {
	b        byte
	depth    int32 // bytes from the root
	end      int32 // one past the last node of this subtree
	first, n int32 // tokens ending here: ids[first : first+n]
}

// NewVocab indexes tokens: tokens[id] is token id's bytes; nil or empty
// entries (special tokens, which a grammar never produces, and unused
// ids) are left out.
func NewVocab(tokens [][]byte) *Vocab {
	v := &Vocab{size: len(tokens), tokens: tokens}
	var order []int32
	for id, t := range tokens {
		if len(t) > 0 && len(t) <= MaxTokenBytes {
			order = append(order, int32(id))
		}
	}
	slices.SortFunc(order, func(a, b int32) int {
		if c := bytes.Compare(tokens[a], tokens[b]); c != 0 {
			return c
		}
		return int(a - b)
	})
	v.nodes = []trieNode{{}}
	open := []int32{0} // the path from the root to the last node
	var prev []byte
	for _, id := range order {
		t := tokens[id]
		l := 0
		for l < len(prev) && l < len(t) && prev[l] == t[l] {
			l++
		}
		for len(open) > l+1 {
			v.nodes[open[len(open)-1]].end = int32(len(v.nodes))
			open = open[:len(open)-1]
		}
		for i := l; i < len(t); i++ {
			v.nodes = append(v.nodes, trieNode{b: t[i], depth: int32(i + 1)})
			open = append(open, int32(len(v.nodes)-1))
		}
		nd := &v.nodes[open[len(open)-1]]
		if nd.n == 0 {
			nd.first = int32(len(v.ids))
		}
		nd.n++
		v.ids = append(v.ids, id)
		v.depth = max(v.depth, len(t))
		prev = t
	}
	for _, o := range open {
		v.nodes[o].end = int32(len(v.nodes))
	}
	return v
}

// Size is the id space the masks cover.
func (v *Vocab) Size() int { return v.size }

// MaskWords is the length of a mask for v: one bit per token id.
func (v *Vocab) MaskWords() int { return (v.size + 63) / 64 }

// Token is the bytes of token id as indexed (nil for the ids left out).
func (v *Vocab) Token(id int32) []byte {
	if id < 0 || int(id) >= len(v.tokens) || len(v.tokens[id]) > MaxTokenBytes {
		return nil
	}
	return v.tokens[id]
}
