//go:build amd64 && !purego

#include "textflag.h"

// The AVX-512 parts of quantizing activations to 8 bits (act8.go): each
// block's largest magnitude, and the rounding (to nearest, ties to even,
// as ggml's nearest_int and _mm256_round_ps) of the scaled values with
// their sums of four (VPDPBUSD with ones).

// func amax32AVX512(x *float32, blocks int, out *float32) (nan bool)
// out[b] = the largest |x| of block b (32 values); nan reports a NaN
// anywhere (VMAXPS would drop it).
TEXT ·amax32AVX512(SB), NOSPLIT, $0-25
	MOVQ x+0(FP), SI
	MOVQ blocks+8(FP), CX
	MOVQ out+16(FP), DI
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	KXORW K2, K2, K2

amax_loop:
	CMPQ CX, $0
	JLE  amax_done
	VANDPS (SI), Z31, Z0
	VANDPS 64(SI), Z31, Z1
	VCMPPS $3, Z0, Z0, K1
	KORW K1, K2, K2
	VCMPPS $3, Z1, Z1, K1
	KORW K1, K2, K2
	VMAXPS Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4E, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xB1, X0, X1
	VMAXPS X1, X0, X0
	VMOVSS X0, (DI)
	ADDQ $128, SI
	ADDQ $4, DI
	DECQ CX
	JMP  amax_loop

amax_done:
	KORTESTW K2, K2
	SETNE AL
	MOVB AL, nan+24(FP)
	VZEROUPPER
	RET

// func quant32AVX512(x *float32, blocks int, scales *float32, q *byte, sums4 *int32)
// q[i] = x[i] * scales[b] rounded to nearest (ties to even), clamped to
// -127..127, for blocks of 32; sums4[k] = q[4k] + ... + q[4k+3].
TEXT ·quant32AVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ blocks+8(FP), CX
	MOVQ scales+16(FP), R8
	MOVQ q+24(FP), DI
	MOVQ sums4+32(FP), R9
	MOVL $127, AX
	VPBROADCASTD AX, Z30
	MOVL $-127, AX
	VPBROADCASTD AX, Z29
	MOVL $0x01010101, AX
	VPBROADCASTD AX, Y28

quant_loop:
	CMPQ CX, $0
	JLE  quant_done
	VBROADCASTSS (R8), Z2
	VMULPS (SI), Z2, Z0
	VMULPS 64(SI), Z2, Z1
	VCVTPS2DQ Z0, Z0
	VCVTPS2DQ Z1, Z1
	VPMINSD Z30, Z0, Z0
	VPMAXSD Z29, Z0, Z0
	VPMINSD Z30, Z1, Z1
	VPMAXSD Z29, Z1, Z1
	VPMOVDB Z0, X3
	VPMOVDB Z1, X4
	VINSERTI32X4 $1, X4, Y3, Y3
	VMOVDQU8 Y3, (DI)
	VPXORD Y5, Y5, Y5
	VPDPBUSD Y3, Y28, Y5
	VMOVDQU32 Y5, (R9)
	ADDQ $128, SI
	ADDQ $4, R8
	ADDQ $32, DI
	ADDQ $32, R9
	DECQ CX
	JMP  quant_loop

quant_done:
	VZEROUPPER
	RET
