// Package gguf reads and writes GGUF files, llama.cpp's format for model
// weights (version 2 and 3, little-endian): a header of typed metadata
// (general.*, <architecture>.*, tokenizer.ggml.*), tensor infos (name,
// shape, ggml type, offset) and the tensors' data, each aligned.
//
// Why: the people who run MedGemma on CPUs today use GGUF files, quantized
// (Q4_K_M, Q8_0...) and published with the vision tower in a separate mmproj
// file. Reading them memory-mapped keeps the weights in their stored format,
// as the safetensors reader does.
//
// Every count, length, shape and offset in a file is checked against the
// file's size before anything is allocated by it: a hostile file gets an
// error naming the key or tensor at fault, never a panic or an allocation
// out of proportion to the file.
package gguf
