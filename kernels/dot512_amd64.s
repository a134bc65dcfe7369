//go:build amd64 && !purego

#include "textflag.h"
#include "reduce_amd64.h"

// AVX-512 versions of the bf16 kernels: 16 floats per instruction.

// func dotBF16AVX512(w *uint16, x *float32, n int) float32
// n must be a multiple of 16.
TEXT ·dotBF16AVX512(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3

zloop64:
	CMPQ CX, $64
	JL   zloop16
	VPMOVZXWD (SI), Z4
	VPSLLD    $16, Z4, Z4
	VFMADD231PS (DI), Z4, Z0
	VPMOVZXWD 32(SI), Z5
	VPSLLD    $16, Z5, Z5
	VFMADD231PS 64(DI), Z5, Z1
	VPMOVZXWD 64(SI), Z6
	VPSLLD    $16, Z6, Z6
	VFMADD231PS 128(DI), Z6, Z2
	VPMOVZXWD 96(SI), Z7
	VPSLLD    $16, Z7, Z7
	VFMADD231PS 192(DI), Z7, Z3
	ADDQ $128, SI
	ADDQ $256, DI
	SUBQ $64, CX
	JMP  zloop64

zloop16:
	CMPQ CX, $16
	JL   zdone
	VPMOVZXWD (SI), Z4
	VPSLLD    $16, Z4, Z4
	VFMADD231PS (DI), Z4, Z0
	ADDQ $32, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  zloop16

zdone:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dot4BF16AVX512(w *uint16, x *float32, stride int, n int, out *[4]float32)
// n must be a multiple of 16.
TEXT ·dot4BF16AVX512(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ stride+16(FP), DX
	SHLQ $2, DX
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), R8
	LEAQ (DI)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11

zq32:
	CMPQ CX, $32
	JL   zq16
	VPMOVZXWD (SI), Z4
	VPSLLD    $16, Z4, Z4
	VPMOVZXWD 32(SI), Z5
	VPSLLD    $16, Z5, Z5
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS (R9), Z4, Z1
	VFMADD231PS (R10), Z4, Z2
	VFMADD231PS (R11), Z4, Z3
	VFMADD231PS 64(DI), Z5, Z8
	VFMADD231PS 64(R9), Z5, Z9
	VFMADD231PS 64(R10), Z5, Z10
	VFMADD231PS 64(R11), Z5, Z11
	ADDQ $64, SI
	ADDQ $128, DI
	ADDQ $128, R9
	ADDQ $128, R10
	ADDQ $128, R11
	SUBQ $32, CX
	JMP  zq32

zq16:
	CMPQ CX, $16
	JL   zqdone
	VPMOVZXWD (SI), Z4
	VPSLLD    $16, Z4, Z4
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS (R9), Z4, Z1
	VFMADD231PS (R10), Z4, Z2
	VFMADD231PS (R11), Z4, Z3

zqdone:
	VADDPS Z8, Z0, Z0
	VADDPS Z9, Z1, Z1
	VADDPS Z10, Z2, Z2
	VADDPS Z11, Z3, Z3
	// Fold each 512-bit sum to 256 bits, then as in the AVX2 kernel.
	VEXTRACTF64X4 $1, Z0, Y4
	VADDPS Y4, Y0, Y0
	VEXTRACTF64X4 $1, Z1, Y5
	VADDPS Y5, Y1, Y1
	VEXTRACTF64X4 $1, Z2, Y6
	VADDPS Y6, Y2, Y2
	VEXTRACTF64X4 $1, Z3, Y7
	VADDPS Y7, Y3, Y3
	VHADDPS Y1, Y0, Y0
	VHADDPS Y3, Y2, Y2
	VHADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVUPS X0, (R8)
	VZEROUPPER
	RET

// func dot4x4BF16AVX512(w *uint16, wstride int, x *float32, xstride int, n int, sums *[16]float32, pf uintptr, lines int)
// Four bf16 weight rows (w, w+wstride, ...) against four float32 rows (x,
// x+xstride, ...), strides in elements, n a multiple of 16. sums[r*4+t]
// receives the dot product of weight row r and x row t. Meanwhile the first
// lines 64-byte lines from address pf are prefetched into L2, two per 16
// columns: the caller points pf at weights it will need next, so that their
// reads from memory overlap this tile's arithmetic on cached data.
TEXT ·dot4x4BF16AVX512(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), DX
	SHLQ $1, DX
	MOVQ x+16(FP), DI
	MOVQ xstride+24(FP), BX
	SHLQ $2, BX
	MOVQ n+32(FP), CX
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

b16:
	CMPQ CX, $16
	JL   bdone
	CMPQ DX, $0
	JLE  bnopf
	PREFETCHT1 (AX)
	PREFETCHT1 64(AX)
	ADDQ $128, AX
	SUBQ $2, DX

bnopf:
	VMOVUPS (DI), Z20
	VMOVUPS (R9), Z21
	VMOVUPS (R10), Z22
	VMOVUPS (R11), Z23
	VPMOVZXWD (SI), Z16
	VPSLLD    $16, Z16, Z16
	VFMADD231PS Z20, Z16, Z0
	VFMADD231PS Z21, Z16, Z1
	VFMADD231PS Z22, Z16, Z2
	VFMADD231PS Z23, Z16, Z3
	VPMOVZXWD (R12), Z17
	VPSLLD    $16, Z17, Z17
	VFMADD231PS Z20, Z17, Z4
	VFMADD231PS Z21, Z17, Z5
	VFMADD231PS Z22, Z17, Z6
	VFMADD231PS Z23, Z17, Z7
	VPMOVZXWD (R13), Z18
	VPSLLD    $16, Z18, Z18
	VFMADD231PS Z20, Z18, Z8
	VFMADD231PS Z21, Z18, Z9
	VFMADD231PS Z22, Z18, Z10
	VFMADD231PS Z23, Z18, Z11
	VPMOVZXWD (R14), Z19
	VPSLLD    $16, Z19, Z19
	VFMADD231PS Z20, Z19, Z12
	VFMADD231PS Z21, Z19, Z13
	VFMADD231PS Z22, Z19, Z14
	VFMADD231PS Z23, Z19, Z15
	ADDQ $32, SI
	ADDQ $32, R12
	ADDQ $32, R13
	ADDQ $32, R14
	ADDQ $64, DI
	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $64, R11
	SUBQ $16, CX
	JMP  b16

bdone:
	REDUCE16(R8)
	VZEROUPPER
	RET

// func dot4x4F32AVX512(w *float32, wstride int, x *float32, xstride int, n int, sums *[16]float32)
// As dot4x4BF16AVX512 with float32 weights.
TEXT ·dot4x4F32AVX512(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), DX
	SHLQ $2, DX
	MOVQ x+16(FP), DI
	MOVQ xstride+24(FP), BX
	SHLQ $2, BX
	MOVQ n+32(FP), CX
	MOVQ sums+40(FP), R8
	LEAQ (SI)(DX*1), R12
	LEAQ (R12)(DX*1), R13
	LEAQ (R13)(DX*1), R14
	LEAQ (DI)(BX*1), R9
	LEAQ (R9)(BX*1), R10
	LEAQ (R10)(BX*1), R11
	ZERO16

f16:
	CMPQ CX, $16
	JL   fdone4
	VMOVUPS (DI), Z20
	VMOVUPS (R9), Z21
	VMOVUPS (R10), Z22
	VMOVUPS (R11), Z23
	VMOVUPS (SI), Z16
	VFMADD231PS Z20, Z16, Z0
	VFMADD231PS Z21, Z16, Z1
	VFMADD231PS Z22, Z16, Z2
	VFMADD231PS Z23, Z16, Z3
	VMOVUPS (R12), Z17
	VFMADD231PS Z20, Z17, Z4
	VFMADD231PS Z21, Z17, Z5
	VFMADD231PS Z22, Z17, Z6
	VFMADD231PS Z23, Z17, Z7
	VMOVUPS (R13), Z18
	VFMADD231PS Z20, Z18, Z8
	VFMADD231PS Z21, Z18, Z9
	VFMADD231PS Z22, Z18, Z10
	VFMADD231PS Z23, Z18, Z11
	VMOVUPS (R14), Z19
	VFMADD231PS Z20, Z19, Z12
	VFMADD231PS Z21, Z19, Z13
	VFMADD231PS Z22, Z19, Z14
	VFMADD231PS Z23, Z19, Z15
	ADDQ $64, SI
	ADDQ $64, R12
	ADDQ $64, R13
	ADDQ $64, R14
	ADDQ $64, DI
	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $64, R11
	SUBQ $16, CX
	JMP  f16

fdone4:
	REDUCE16(R8)
	VZEROUPPER
	RET


// func dot4x1BF16AVX512(w *uint16, wstride int, x *float32, n int, sums *[16]float32, pf uintptr, lines int)
// dot4x4BF16AVX512 for one float32 row x: sums[r*4] receives the dot product
// of weight row r, summed in the same order as the 4x4 kernel's (the same
// accumulator registers, the same REDUCE16), so a token's products are
// bitwise the same whichever kernel it went through. It prefetches as the
// 4x4 kernel does, two lines per 16 columns: the whole next group of four
// rows when pf points at it, which keeps a single-token decode's reads ahead
// of its arithmetic.
TEXT ·dot4x1BF16AVX512(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ wstride+8(FP), DX
	SHLQ $1, DX
	MOVQ x+16(FP), DI
	MOVQ n+24(FP), CX
	MOVQ sums+32(FP), R8
	MOVQ pf+40(FP), AX
	LEAQ (SI)(DX*1), R12
	LEAQ (R12)(DX*1), R13
	LEAQ (R13)(DX*1), R14
	MOVQ lines+48(FP), DX
	ZERO16

r16:
	CMPQ CX, $16
	JL   rdone
	CMPQ DX, $0
	JLE  rnopf
	PREFETCHT1 (AX)
	PREFETCHT1 64(AX)
	ADDQ $128, AX
	SUBQ $2, DX

rnopf:
	VMOVUPS (DI), Z20
	VPMOVZXWD (SI), Z16
	VPSLLD    $16, Z16, Z16
	VFMADD231PS Z20, Z16, Z0
	VPMOVZXWD (R12), Z17
	VPSLLD    $16, Z17, Z17
	VFMADD231PS Z20, Z17, Z4
	VPMOVZXWD (R13), Z18
	VPSLLD    $16, Z18, Z18
	VFMADD231PS Z20, Z18, Z8
	VPMOVZXWD (R14), Z19
	VPSLLD    $16, Z19, Z19
	VFMADD231PS Z20, Z19, Z12
	ADDQ $32, SI
	ADDQ $32, R12
	ADDQ $32, R13
	ADDQ $32, R14
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  r16

rdone:
	REDUCE16(R8)
	VZEROUPPER
	RET
