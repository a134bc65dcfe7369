// Package grammar constrains generation to a language: a context-free
// grammar over bytes, written in llama.cpp's GBNF or compiled from a JSON
// Schema, run as a pushdown matcher, and turned into the set of vocabulary
// tokens allowed at each step (a mask applied to the logits before
// sampling), so that a constrained answer is valid by construction.
//
// Each rule is compiled to a deterministic automaton whose edges are bytes
// or calls of other rules; the matcher's state is a small set of stacks of
// (rule, automaton state) frames, interned so that equal stacks are one
// pointer. Masks come from the vocabulary's byte strings in a trie walked
// depth first: for each top frame the tokens it accepts whatever lies
// below it are computed once per grammar (in the manner of xgrammar's
// context-independent tokens), and only the tokens that run past the end
// of the frame's rule are checked against the real stack at each step.
package grammar
