//go:build amd64 && !purego

#include "textflag.h"
#include "exp_amd64.h"

// func geluTanhAVX512(x *float32, n int)
//
// x[i] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in place, n a
// positive multiple of 16, with tanh(u) = sign(u) (1 - e) / (1 + e) for
// e = exp(-2|u|) (EXP16).
TEXT ·geluTanhAVX512(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	EXPCONSTS
	MOVL $0x3d372713, AX
	VPBROADCASTD AX, Z16 // 0.044715
	MOVL $0x3f4c422a, AX
	VPBROADCASTD AX, Z17 // sqrt(2/pi)
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z18 // |.| mask
	MOVL $0xc0000000, AX
	VPBROADCASTD AX, Z19 // -2
gloop:
	VMOVUPS (SI), Z3
	VMULPS Z3, Z3, Z4
	VMULPS Z16, Z4, Z4
	VFMADD213PS Z3, Z3, Z4 // x + 0.044715 x^3
	VMULPS Z17, Z4, Z4     // u
	VPANDD Z18, Z4, Z5     // |u|
	VPANDND Z4, Z18, Z6    // sign of u
	VMULPS Z19, Z5, Z0     // -2|u|
	EXP16
	VSUBPS Z2, Z30, Z7     // 1 - e
	VADDPS Z2, Z30, Z8     // 1 + e
	VDIVPS Z8, Z7, Z7      // tanh(|u|)
	VPXORD Z6, Z7, Z7      // tanh(u)
	VMULPS Z29, Z3, Z3     // x / 2
	VFMADD213PS Z3, Z3, Z7 // x/2 + x/2 tanh(u)
	VMOVUPS Z7, (SI)
	ADDQ $64, SI
	SUBQ $16, CX
	JNZ gloop
	VZEROUPPER
	RET
