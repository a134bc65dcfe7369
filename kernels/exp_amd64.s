#include "textflag.h"

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
	MOVL $0x3fb8aa3b, AX
	VPBROADCASTD AX, Z22 // log2(e)
	MOVL $0x3f318000, AX
	VPBROADCASTD AX, Z23 // ln2 high
	MOVL $0xb95e8083, AX
	VPBROADCASTD AX, Z24 // ln2 low
	MOVL $0x3ab60b61, AX
	VPBROADCASTD AX, Z25 // 1/720
	MOVL $0x3c088889, AX
	VPBROADCASTD AX, Z26 // 1/120
	MOVL $0x3d2aaaab, AX
	VPBROADCASTD AX, Z27 // 1/24
	MOVL $0x3e2aaaab, AX
	VPBROADCASTD AX, Z28 // 1/6
	MOVL $0x3f000000, AX
	VPBROADCASTD AX, Z29 // 1/2
	MOVL $0x3f800000, AX
	VPBROADCASTD AX, Z30 // 1
	VXORPS Z31, Z31, Z31

eloop:
	CMPQ CX, $16
	JL   edone
	VMOVUPS (SI), Z0
	VSUBPS Z20, Z0, Z0
	VMULPS Z21, Z0, Z0
	VMULPS Z22, Z0, Z1
	VRNDSCALEPS $0, Z1, Z1
	VFNMADD231PS Z23, Z1, Z0
	VFNMADD231PS Z24, Z1, Z0
	VMOVAPS Z25, Z2
	VFMADD213PS Z26, Z0, Z2
	VFMADD213PS Z27, Z0, Z2
	VFMADD213PS Z28, Z0, Z2
	VFMADD213PS Z29, Z0, Z2
	VFMADD213PS Z30, Z0, Z2
	VFMADD213PS Z30, Z0, Z2
	VSCALEFPS Z1, Z2, Z2
	VMOVUPS Z2, (SI)
	VADDPS Z2, Z31, Z31
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  eloop

edone:
	VMOVUPS Z31, (R8)
	VZEROUPPER
	RET
