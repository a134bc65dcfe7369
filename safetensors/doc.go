// Package safetensors reads and writes the safetensors format that Hugging
// Face checkpoints are published in: an 8-byte little-endian header length,
// a JSON header naming each tensor's dtype, shape and byte range, then the
// raw little-endian data.
//
// Files are memory-mapped, so weights stay on disk in their stored dtype
// (bf16 for MedGemma) and are paged in as they are used; nothing is copied at
// load. A model split into shards is opened through its
// model.safetensors.index.json. The header is validated before any tensor is
// handed out: known dtypes, sizes equal to dtype x shape, byte ranges inside
// the file and not overlapping. A bad file is an error naming the file and the
// tensor.
package safetensors
