//go:build amd64 && !purego

#include "textflag.h"
#include "reduce_amd64.h"

// AVX-512 products of Q8_0 weights (blocks of 34 bytes: a float16 scale,
// 32 int8) with float32 activations. Each block's 32 values are widened to
// float32 and multiplied by the block's scale, which is the weight exactly as
// DequantizeQ8_0 gives it, then multiplied into the activations with the same
// accumulators and reduction (REDUCE16, reduce_amd64.h) as the
// bf16 kernels: 4x1 sums what 4x4 sums for a token, bit for bit.

// Q8ROW widens the block at p: Z16 = weights 0..15, Z17 = 16..31.
#define Q8ROW(p) \
	VPBROADCASTW (p), Y18   \
	VCVTPH2PS    Y18, Z18   \
	VPMOVSXBD    2(p), Z16  \
	VCVTDQ2PS    Z16, Z16   \
	VMULPS       Z18, Z16, Z16 \
	VPMOVSXBD    18(p), Z17 \
	VCVTDQ2PS    Z17, Z17   \
	VMULPS       Z18, Z17, Z17

#define FMA2(xa, xb, acc) \
	VFMADD231PS xa, Z16, acc \
	VFMADD231PS xb, Z17, acc

// func dot4x4Q8_0AVX512(w *byte, wstride int, x *float32, xstride, blocks int, sums *[16]float32, pf uintptr, lines int)
// Four rows of Q8_0 blocks (w, w+wstride bytes, ...) against four float32
// rows (x, x+xstride elements, ...), blocks blocks of 32 each; sums[r*4+t]
// receives row r dotted with x row t. Prefetches up to lines 64-byte lines
// from pf into L2, three per block.
TEXT ·dot4x4Q8_0AVX512(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), DX
	MOVQ x+16(FP), DI
	MOVQ xstride+24(FP), BX
	SHLQ $2, BX
	MOVQ blocks+32(FP), CX
	MOVQ sums+40(FP), R8
	MOVQ pf+48(FP), AX
	LEAQ (SI)(DX*1), R12
	LEAQ (R12)(DX*1), R13
	LEAQ (R13)(DX*1), R14
	MOVQ lines+56(FP), DX
	LEAQ (DI)(BX*1), R9
	LEAQ (R9)(BX*1), R10
	LEAQ (R10)(BX*1), R11
	ZERO16

q44:
	CMPQ CX, $0
	JLE  q44done
	CMPQ DX, $0
	JLE  q44nopf
	PREFETCHT1 (AX)
	PREFETCHT1 64(AX)
	PREFETCHT1 128(AX)
	ADDQ $192, AX
	SUBQ $3, DX

q44nopf:
	VMOVUPS (DI), Z20
	VMOVUPS 64(DI), Z21
	VMOVUPS (R9), Z22
	VMOVUPS 64(R9), Z23
	VMOVUPS (R10), Z24
	VMOVUPS 64(R10), Z25
	VMOVUPS (R11), Z26
	VMOVUPS 64(R11), Z27
	Q8ROW(SI)
	FMA2(Z20, Z21, Z0)
	FMA2(Z22, Z23, Z1)
	FMA2(Z24, Z25, Z2)
	FMA2(Z26, Z27, Z3)
	Q8ROW(R12)
	FMA2(Z20, Z21, Z4)
	FMA2(Z22, Z23, Z5)
	FMA2(Z24, Z25, Z6)
	FMA2(Z26, Z27, Z7)
	Q8ROW(R13)
	FMA2(Z20, Z21, Z8)
	FMA2(Z22, Z23, Z9)
	FMA2(Z24, Z25, Z10)
	FMA2(Z26, Z27, Z11)
	Q8ROW(R14)
	FMA2(Z20, Z21, Z12)
	FMA2(Z22, Z23, Z13)
	FMA2(Z24, Z25, Z14)
	FMA2(Z26, Z27, Z15)
	ADDQ $34, SI
	ADDQ $34, R12
	ADDQ $34, R13
	ADDQ $34, R14
	ADDQ $128, DI
	ADDQ $128, R9
	ADDQ $128, R10
	ADDQ $128, R11
	DECQ CX
	JMP  q44

q44done:
	REDUCE16(R8)
	VZEROUPPER
	RET

// func dot4x1Q8_0AVX512(w *byte, wstride int, x *float32, blocks int, sums *[16]float32, pf uintptr, lines int)
// dot4x4Q8_0AVX512 for one float32 row: sums[r*4] is row r dotted with x,
// summed as the 4x4 kernel sums its first token.
TEXT ·dot4x1Q8_0AVX512(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), DX
	MOVQ x+16(FP), DI
	MOVQ blocks+24(FP), CX
	MOVQ sums+32(FP), R8
	MOVQ pf+40(FP), AX
	LEAQ (SI)(DX*1), R12
	LEAQ (R12)(DX*1), R13
	LEAQ (R13)(DX*1), R14
	MOVQ lines+48(FP), DX
	ZERO16

q41:
	CMPQ CX, $0
	JLE  q41done
	CMPQ DX, $0
	JLE  q41nopf
	PREFETCHT1 (AX)
	PREFETCHT1 64(AX)
	PREFETCHT1 128(AX)
	ADDQ $192, AX
	SUBQ $3, DX

q41nopf:
	VMOVUPS (DI), Z20
	VMOVUPS 64(DI), Z21
	Q8ROW(SI)
	FMA2(Z20, Z21, Z0)
	Q8ROW(R12)
	FMA2(Z20, Z21, Z4)
	Q8ROW(R13)
	FMA2(Z20, Z21, Z8)
	Q8ROW(R14)
	FMA2(Z20, Z21, Z12)
	ADDQ $34, SI
	ADDQ $34, R12
	ADDQ $34, R13
	ADDQ $34, R14
	ADDQ $128, DI
	DECQ CX
	JMP  q41

q41done:
	REDUCE16(R8)
	VZEROUPPER
	RET
