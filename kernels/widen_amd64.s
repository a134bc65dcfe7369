//go:build amd64 && !purego

#include "textflag.h"

// Widening of stored rows to float32 (the KV cache's f16 and q8_0 rows).

// func widenF16AVX512(dst *float32, src *uint16, n int)
// n a multiple of 16.
TEXT ·widenF16AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

widenf16:
	CMPQ CX, $0
	JLE  widenf16_done
	VCVTPH2PS (SI), Z0
	VMOVUPS Z0, (DI)
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  widenf16

widenf16_done:
	VZEROUPPER
	RET

// func widenQ8_0AVX512(dst *float32, src *byte, blocks int)
// Each block of 34 bytes (a float16 scale, 32 int8) to 32 float32, scale
// times value, as DequantizeQ8_0.
TEXT ·widenQ8_0AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX

widenq8:
	CMPQ CX, $0
	JLE  widenq8_done
	VPBROADCASTW (SI), Y2
	VCVTPH2PS Y2, Z2
	VPMOVSXBD 2(SI), Z0
	VPMOVSXBD 18(SI), Z1
	VCVTDQ2PS Z0, Z0
	VCVTDQ2PS Z1, Z1
	VMULPS Z2, Z0, Z0
	VMULPS Z2, Z1, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $34, SI
	ADDQ $128, DI
	DECQ CX
	JMP  widenq8

widenq8_done:
	VZEROUPPER
	RET
