//go:build amd64 && !purego

#include "textflag.h"
#include "consts_amd64.h"

// The islow inverse DCT of jpeg_idct.go, eight 1-D transforms at a time in
// int32 lanes: pass 1 on the columns, transpose, pass 2 on the rows,
// transpose back, level shift, clamp and store.


C8(c0541, 4433)
C8(cm1847, -15137)
C8(c0765, 6270)
C8(c1175, 9633)
C8(c0298, 2446)
C8(c2053, 16819)
C8(c3072, 25172)
C8(c1501, 12299)
C8(cm0899, -7373)
C8(cm2562, -20995)
C8(cm1961, -16069)
C8(cm0390, -3196)
C8(rnd1, 1024)
C8(rnd2, 131072)
C8(c128, 128)

// packorder is the VPERMD order (0, 4, 1, 5, 2, 6, 3, 7) that puts back in
// memory order the bytes of four 8-lane int32 vectors packed by VPACKSSDW
// and VPACKUSWB (which work within 128-bit lanes).
DATA packorder<>+0(SB)/8, $0x0000000400000000
DATA packorder<>+8(SB)/8, $0x0000000500000001
DATA packorder<>+16(SB)/8, $0x0000000600000002
DATA packorder<>+24(SB)/8, $0x0000000700000003
GLOBL packorder<>(SB), RODATA|NOPTR, $32

// PASS transforms the 8 rows of int32 at R (32 bytes apart) as 8 parallel
// 1-D IDCTs (lane c is column c) into Y4, Y5, Y6, Y7, Y8, Y9, Y14, Y15
// (outputs 0..7), rounding with RND and shifting right by SH.
#define PASS(R, RND, SH) \
	VMOVDQU 64(R), Y2; \
	VMOVDQU 192(R), Y6; \
	VPADDD Y6, Y2, Y8; \
	VPMULLD c0541<>(SB), Y8, Y8; \
	VPMULLD cm1847<>(SB), Y6, Y6; \
	VPADDD Y8, Y6, Y6; \
	VPMULLD c0765<>(SB), Y2, Y2; \
	VPADDD Y8, Y2, Y2; \
	VMOVDQU 0(R), Y0; \
	VMOVDQU 128(R), Y4; \
	VPADDD Y4, Y0, Y8; \
	VPSUBD Y4, Y0, Y9; \
	VPSLLD $13, Y8, Y8; \
	VPSLLD $13, Y9, Y9; \
	VPADDD RND, Y8, Y8; \
	VPADDD RND, Y9, Y9; \
	VPADDD Y2, Y8, Y10; \
	VPSUBD Y2, Y8, Y13; \
	VPADDD Y6, Y9, Y11; \
	VPSUBD Y6, Y9, Y12; \
	VMOVDQU 224(R), Y0; \
	VMOVDQU 160(R), Y1; \
	VMOVDQU 96(R), Y2; \
	VMOVDQU 32(R), Y3; \
	VPADDD Y3, Y0, Y4; \
	VPADDD Y2, Y1, Y5; \
	VPADDD Y2, Y0, Y6; \
	VPADDD Y3, Y1, Y7; \
	VPADDD Y7, Y6, Y8; \
	VPMULLD c1175<>(SB), Y8, Y8; \
	VPMULLD c0298<>(SB), Y0, Y0; \
	VPMULLD c2053<>(SB), Y1, Y1; \
	VPMULLD c3072<>(SB), Y2, Y2; \
	VPMULLD c1501<>(SB), Y3, Y3; \
	VPMULLD cm0899<>(SB), Y4, Y4; \
	VPMULLD cm2562<>(SB), Y5, Y5; \
	VPMULLD cm1961<>(SB), Y6, Y6; \
	VPADDD Y8, Y6, Y6; \
	VPMULLD cm0390<>(SB), Y7, Y7; \
	VPADDD Y8, Y7, Y7; \
	VPADDD Y6, Y4, Y9; \
	VPADDD Y9, Y0, Y0; \
	VPADDD Y7, Y5, Y9; \
	VPADDD Y9, Y1, Y1; \
	VPADDD Y6, Y5, Y9; \
	VPADDD Y9, Y2, Y2; \
	VPADDD Y7, Y4, Y9; \
	VPADDD Y9, Y3, Y3; \
	VPADDD Y3, Y10, Y4; \
	VPSUBD Y3, Y10, Y15; \
	VPADDD Y2, Y11, Y5; \
	VPSUBD Y2, Y11, Y14; \
	VPADDD Y1, Y12, Y6; \
	VPSUBD Y1, Y12, Y9; \
	VPADDD Y0, Y13, Y7; \
	VPSUBD Y0, Y13, Y8; \
	VPSRAD SH, Y4, Y4; \
	VPSRAD SH, Y5, Y5; \
	VPSRAD SH, Y6, Y6; \
	VPSRAD SH, Y7, Y7; \
	VPSRAD SH, Y8, Y8; \
	VPSRAD SH, Y9, Y9; \
	VPSRAD SH, Y14, Y14; \
	VPSRAD SH, Y15, Y15

// TRANSPOSE transposes the 8x8 int32 matrix whose rows are Y4, Y5, Y6, Y7,
// Y8, Y9, Y14, Y15 into rows Y0, Y1, Y2, Y3, Y10, Y11, Y12, Y13.
#define TRANSPOSE \
	VPUNPCKLDQ Y5, Y4, Y0; \
	VPUNPCKHDQ Y5, Y4, Y1; \
	VPUNPCKLDQ Y7, Y6, Y2; \
	VPUNPCKHDQ Y7, Y6, Y3; \
	VPUNPCKLDQ Y9, Y8, Y10; \
	VPUNPCKHDQ Y9, Y8, Y11; \
	VPUNPCKLDQ Y15, Y14, Y12; \
	VPUNPCKHDQ Y15, Y14, Y13; \
	VPUNPCKLQDQ Y2, Y0, Y4; \
	VPUNPCKHQDQ Y2, Y0, Y5; \
	VPUNPCKLQDQ Y3, Y1, Y6; \
	VPUNPCKHQDQ Y3, Y1, Y7; \
	VPUNPCKLQDQ Y12, Y10, Y8; \
	VPUNPCKHQDQ Y12, Y10, Y9; \
	VPUNPCKLQDQ Y13, Y11, Y14; \
	VPUNPCKHQDQ Y13, Y11, Y15; \
	VPERM2I128 $0x20, Y8, Y4, Y0; \
	VPERM2I128 $0x31, Y8, Y4, Y10; \
	VPERM2I128 $0x20, Y9, Y5, Y1; \
	VPERM2I128 $0x31, Y9, Y5, Y11; \
	VPERM2I128 $0x20, Y14, Y6, Y2; \
	VPERM2I128 $0x31, Y14, Y6, Y12; \
	VPERM2I128 $0x20, Y15, Y7, Y3; \
	VPERM2I128 $0x31, Y15, Y7, Y13

// STORE4ROWS stores the 4 qwords of Y (X its low half, T a scratch
// register) to the rows at DI, DI+DX, DI+2*DX and DI+R8 (3*DX).
#define STORE4ROWS(Y, X, T) \
	VMOVQ X, (DI); \
	VPEXTRQ $1, X, (DI)(DX*1); \
	VEXTRACTI128 $1, Y, T; \
	VMOVQ T, (DI)(DX*2); \
	VPEXTRQ $1, T, (DI)(R8*1)

// func idctIslowAVX2(dst *uint8, stride int, blk *[64]int32)
TEXT ·idctIslowAVX2(SB), NOSPLIT, $256-24
	MOVQ dst+0(FP), DI
	MOVQ stride+8(FP), DX
	MOVQ blk+16(FP), SI
	PASS(SI, rnd1<>(SB), $11)
	TRANSPOSE
	VMOVDQU Y0, 0(SP)
	VMOVDQU Y1, 32(SP)
	VMOVDQU Y2, 64(SP)
	VMOVDQU Y3, 96(SP)
	VMOVDQU Y10, 128(SP)
	VMOVDQU Y11, 160(SP)
	VMOVDQU Y12, 192(SP)
	VMOVDQU Y13, 224(SP)
	PASS(SP, rnd2<>(SB), $18)
	TRANSPOSE
	// Rows 0..7 are in Y0, Y1, Y2, Y3, Y10, Y11, Y12, Y13.
	VMOVDQU c128<>(SB), Y4
	VPADDD Y4, Y0, Y0
	VPADDD Y4, Y1, Y1
	VPADDD Y4, Y2, Y2
	VPADDD Y4, Y3, Y3
	VPADDD Y4, Y10, Y10
	VPADDD Y4, Y11, Y11
	VPADDD Y4, Y12, Y12
	VPADDD Y4, Y13, Y13
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSDW Y11, Y10, Y10
	VPACKSSDW Y13, Y12, Y12
	VPACKUSWB Y2, Y0, Y0
	VPACKUSWB Y12, Y10, Y10
	VMOVDQU packorder<>(SB), Y5
	VPERMD Y0, Y5, Y0
	VPERMD Y10, Y5, Y10
	LEAQ (DX)(DX*2), R8
	STORE4ROWS(Y0, X0, X1)
	LEAQ (DI)(DX*4), DI
	STORE4ROWS(Y10, X10, X11)
	VZEROUPPER
	RET
