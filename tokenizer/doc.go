// Package tokenizer implements the Gemma 3 tokenizer that MedGemma ships, read
// from the Hugging Face tokenizer.json, with exactly the results of the Rust
// tokenizers library that transformers uses.
//
// The pipeline, as that file describes it:
//
//   - added tokens (<start_of_turn>, <image_soft_token>, runs of "\n" and "\t",
//     HTML tags, ...) are found in the raw text first, leftmost-longest, and map
//     to their ids directly;
//   - the text between them is normalized (space becomes "▁", U+2581) and cut
//     into BPE symbols, one per character; a character missing from the
//     vocabulary becomes its UTF-8 bytes as <0xNN> tokens (byte fallback);
//   - adjacent symbols are merged by merge rank, lowest rank first and leftmost
//     on ties, until no listed merge applies;
//   - with special tokens requested, the post-processor adds <bos>.
//
// Gemma's tokenizer has no pre-tokenizer that splits words (its Split on " "
// never matches after normalization), so in principle one BPE "word" spans a
// whole paragraph. Only one vocabulary entry contains "▁" after another
// character, so the text can be cut before every such "▁" without changing any
// merge; Load derives that rule from the vocabulary itself, and the pieces are
// cached. That keeps encoding linear and fast.
//
// Decoding maps ids back to token text, turns "▁" into spaces and reassembles
// byte-fallback runs into UTF-8 (an invalid run becomes one U+FFFD per byte, as
// the tokenizers library does). StreamDecoder does the same incrementally for
// generation, releasing text only once its UTF-8 is complete.
//
// A Tokenizer is safe for concurrent use.
package tokenizer
