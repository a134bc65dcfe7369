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

// func amax32AVX2(x *float32, blocks int, out *float32) (nan bool)
// amax32AVX512 on AVX2: out[b] = the largest |x| of block b; nan reports a
// NaN anywhere.
TEXT ·amax32AVX2(SB), NOSPLIT, $0-25
	MOVQ x+0(FP), SI
	MOVQ blocks+8(FP), CX
	MOVQ out+16(FP), DI
	MOVL $0x7fffffff, AX
	MOVL AX, X15
	VPBROADCASTD X15, Y15
	VXORPS Y14, Y14, Y14

amax2_loop:
	CMPQ CX, $0
	JLE  amax2_done
	VANDPS (SI), Y15, Y0
	VANDPS 32(SI), Y15, Y1
	VANDPS 64(SI), Y15, Y2
	VANDPS 96(SI), Y15, Y3
	VCMPPS $3, Y0, Y0, Y4
	VCMPPS $3, Y1, Y1, Y5
	VCMPPS $3, Y2, Y2, Y6
	VCMPPS $3, Y3, Y3, Y7
	VORPS Y4, Y5, Y4
	VORPS Y6, Y7, Y6
	VORPS Y4, Y6, Y4
	VORPS Y4, Y14, Y14
	VMAXPS Y1, Y0, Y0
	VMAXPS Y3, Y2, Y2
	VMAXPS Y2, Y0, Y0
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
	JMP  amax2_loop

amax2_done:
	VMOVMSKPS Y14, AX
	TESTL AX, AX
	SETNE AL
	MOVB AL, nan+24(FP)
	VZEROUPPER
	RET

// func quant32AVX2(x *float32, blocks int, scales *float32, q *byte, sums4 *int32)
// quant32AVX512 on AVX2: the int32 values packed to bytes (VPACKSSDW,
// VPACKSSWB interleave the 128-bit lanes: VPERMD puts the groups of four
// back in order), their sums of four by VPMADDUBSW and VPMADDWD with ones.
TEXT ·quant32AVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ blocks+8(FP), CX
	MOVQ scales+16(FP), R8
	MOVQ q+24(FP), DI
	MOVQ sums4+32(FP), R9
	MOVL $127, AX
	MOVL AX, X15
	VPBROADCASTD X15, Y15
	MOVL $-127, AX
	MOVL AX, X14
	VPBROADCASTD X14, Y14
	VMOVDQU quantPerm<>(SB), Y13
	MOVL $0x01010101, AX
	MOVL AX, X12
	VPBROADCASTD X12, Y12
	MOVL $0x00010001, AX
	MOVL AX, X11
	VPBROADCASTD X11, Y11

quant2_loop:
	CMPQ CX, $0
	JLE  quant2_done
	VBROADCASTSS (R8), Y8
	VMULPS (SI), Y8, Y0
	VMULPS 32(SI), Y8, Y1
	VMULPS 64(SI), Y8, Y2
	VMULPS 96(SI), Y8, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPMINSD Y15, Y0, Y0
	VPMINSD Y15, Y1, Y1
	VPMINSD Y15, Y2, Y2
	VPMINSD Y15, Y3, Y3
	VPMAXSD Y14, Y0, Y0
	VPMAXSD Y14, Y1, Y1
	VPMAXSD Y14, Y2, Y2
	VPMAXSD Y14, Y3, Y3
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD Y0, Y13, Y0
	VMOVDQU Y0, (DI)
	VPMADDUBSW Y0, Y12, Y1
	VPMADDWD Y11, Y1, Y1
	VMOVDQU Y1, (R9)
	ADDQ $128, SI
	ADDQ $4, R8
	ADDQ $32, DI
	ADDQ $32, R9
	DECQ CX
	JMP  quant2_loop

quant2_done:
	VZEROUPPER
	RET

// The dwords of VPACKSSWB's result hold values 0-3, 8-11, 16-19, 24-27,
// 4-7, 12-15, 20-23, 28-31: VPERMD's indices to put them in order.
DATA quantPerm<>+0(SB)/4, $0
DATA quantPerm<>+4(SB)/4, $4
DATA quantPerm<>+8(SB)/4, $1
DATA quantPerm<>+12(SB)/4, $5
DATA quantPerm<>+16(SB)/4, $2
DATA quantPerm<>+20(SB)/4, $6
DATA quantPerm<>+24(SB)/4, $3
DATA quantPerm<>+28(SB)/4, $7
GLOBL quantPerm<>(SB), RODATA|NOPTR, $32
