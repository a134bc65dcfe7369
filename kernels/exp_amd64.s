//go:build amd64 && !purego

#include "textflag.h"
#include "exp_amd64.h"

// func maxAVX512(x *float32, n int, out *[16]float32)
// Lane-wise maximum of x (n a positive multiple of 16) into out.
TEXT ·maxAVX512(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), R8
	VMOVUPS (SI), Z0
	ADDQ $64, SI
	SUBQ $16, CX

mloop:
	CMPQ CX, $16
	JL   mdone
	VMAXPS (SI), Z0, Z0
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  mloop

mdone:
	VMOVUPS Z0, (R8)
	VZEROUPPER
	RET

// func expSumAVX512(x *float32, n int, sub, scale float32, out *[16]float32)
// x[i] = exp((x[i]-sub)*scale) in place for n a multiple of 16, with the
// algorithm of Exp32 (VSCALEFPS applies 2^k); lane-wise sums into out.
TEXT ·expSumAVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS sub+16(FP), Z20
	VBROADCASTSS scale+20(FP), Z21
	MOVQ out+24(FP), R8
	EXPCONSTS
	VPXORD Z31, Z31, Z31

eloop:
	CMPQ CX, $16
	JL   edone
	VMOVUPS (SI), Z0
	VSUBPS Z20, Z0, Z0
	VMULPS Z21, Z0, Z0
	EXP16
	VMOVUPS Z2, (SI)
	VADDPS Z2, Z31, Z31
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  eloop

edone:
	VMOVUPS Z31, (R8)
	VZEROUPPER
	RET
