package kernels

import "encoding/binary"

// The block formats of ggml (llama.cpp), in which GGUF files store
// quantized weights: each block of 32 (Q8_0, Q4_0) or 256 (the K types)
// weights holds small integers and the float16 scales that turn them back
// into weights. The dequantizations here compute what ggml's reference
// (gguf-py) does, bit for bit: every product is rounded to float32 on its
// own (the explicit conversions keep Go from fusing a multiply and an add).

// Block sizes: weights per block and bytes per block.
const (
	QK8_0      = 32
	Q8_0Bytes  = 34
	QK4_0      = 32
	Q4_0Bytes  = 18
	QKK        = 256 // the K types' super-block
	Q4_KBytes  = 144
	Q5_KBytes  = 176
	Q6_KBytes  = 210
	kScaleSize = 12 // Q4_K and Q5_K: eight 6-bit scales and mins
)

func f16At(b []byte) float32 { return F16ToF32(binary.LittleEndian.Uint16(b)) }
