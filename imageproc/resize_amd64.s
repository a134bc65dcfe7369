//go:build amd64 && !purego

#include "textflag.h"

// AVX2 passes of Resize (resize.go) for int16 weights, the
// RoundingTransformers precision: the same sums as the plain Go passes.

// Byte shuffle that turns 4 RGB pixels (12 bytes, broadcast to both lanes)
// into int16 pairs for VPMADDWD: lane 0 [R0 R1 G0 G1 B0 B1 0 0] from pixels
// 0 and 1, lane 1 the same from pixels 2 and 3.
DATA rgbpairs<>+0(SB)/8, $0x8004800180038000
DATA rgbpairs<>+8(SB)/8, $0x8080808080058002
DATA rgbpairs<>+16(SB)/8, $0x800a800780098006
DATA rgbpairs<>+24(SB)/8, $0x80808080800b8008
GLOBL rgbpairs<>(SB), RODATA|NOPTR, $32

// packedDwordOrder is the VPERMD order that puts back in memory order the
// bytes of four 8-lane int32 vectors packed by VPACKSSDW and VPACKUSWB
// (which work within 128-bit lanes).
DATA ·packedDwordOrder+0(SB)/4, $0
DATA ·packedDwordOrder+4(SB)/4, $4
DATA ·packedDwordOrder+8(SB)/4, $1
DATA ·packedDwordOrder+12(SB)/4, $5
DATA ·packedDwordOrder+16(SB)/4, $2
DATA ·packedDwordOrder+20(SB)/4, $6
DATA ·packedDwordOrder+24(SB)/4, $3
DATA ·packedDwordOrder+28(SB)/4, $7
GLOBL ·packedDwordOrder(SB), RODATA|NOPTR, $32

// func resampleRowAVX2(dst, src *uint8, offs *int32, w *int16, n, groups int, half int32, shift uint64)
//
// For each of n output pixels i: sums groups x 4 input pixels read from byte
// offset offs[i] of src, weighted by w[i*groups*16:] (per group: k0 k1 k0 k1
// k0 k1 0 0 k2 k3 k2 k3 k2 k3 0 0), adds half, shifts right, clamps to
// 0..255 and stores 3 bytes. It reads up to 16 bytes past the last group's
// 12, which the caller provides.
TEXT ·resampleRowAVX2(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ offs+16(FP), R8
	MOVQ w+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ groups+40(FP), R10
	MOVL half+48(FP), AX
	VMOVD AX, X14
	VPBROADCASTD X14, X14
	MOVQ shift+56(FP), AX
	VMOVQ AX, X15
	VMOVDQU rgbpairs<>(SB), Y13
	TESTQ CX, CX
	JZ done
pixel:
	MOVLQSX (R8), AX
	LEAQ (SI)(AX*1), R11
	MOVQ R10, DX
	VPXOR Y0, Y0, Y0
group:
	VBROADCASTI128 (R11), Y1
	VPSHUFB Y13, Y1, Y1
	VPMADDWD (R9), Y1, Y1
	VPADDD Y1, Y0, Y0
	ADDQ $12, R11
	ADDQ $32, R9
	DECQ DX
	JNZ group
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPADDD X14, X0, X0
	VPSRAD X15, X0, X0
	VPACKSSDW X0, X0, X0
	VPACKUSWB X0, X0, X0
	VMOVD X0, AX
	MOVW AX, (DI)
	SHRL $16, AX
	MOVB AX, 2(DI)
	ADDQ $3, DI
	ADDQ $4, R8
	DECQ CX
	JNZ pixel
done:
	VZEROUPPER
	RET

// func resampleColumnsAVX2(dst, src *uint8, stride, n int, k *int32, taps int, half int32, shift uint64)
//
// Vertical pass for one output row: for each of the first n bytes (n a
// multiple of 32), the sum over taps rows (stride apart, starting at src) of
// the byte times k[t], plus half, shifted right and clamped, into dst.
TEXT ·resampleColumnsAVX2(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ stride+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), R8
	MOVQ taps+40(FP), R9
	MOVL half+48(FP), AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVQ shift+56(FP), AX
	VMOVQ AX, X15
	VMOVDQU ·packedDwordOrder(SB), Y13
	SHRQ $5, CX
	JZ cdone
chunk:
	VMOVDQA Y14, Y0
	VMOVDQA Y14, Y1
	VMOVDQA Y14, Y2
	VMOVDQA Y14, Y3
	MOVQ SI, R11
	MOVQ R8, R12
	MOVQ R9, BX
tap:
	VPBROADCASTD (R12), Y8
	VPMOVZXBD (R11), Y4
	VPMOVZXBD 8(R11), Y5
	VPMOVZXBD 16(R11), Y6
	VPMOVZXBD 24(R11), Y7
	VPMULLD Y8, Y4, Y4
	VPMULLD Y8, Y5, Y5
	VPMULLD Y8, Y6, Y6
	VPMULLD Y8, Y7, Y7
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y1, Y1
	VPADDD Y6, Y2, Y2
	VPADDD Y7, Y3, Y3
	ADDQ DX, R11
	ADDQ $4, R12
	DECQ BX
	JNZ tap
	VPSRAD X15, Y0, Y0
	VPSRAD X15, Y1, Y1
	VPSRAD X15, Y2, Y2
	VPSRAD X15, Y3, Y3
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKUSWB Y2, Y0, Y0
	VPERMD Y0, Y13, Y0
	VMOVDQU Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ chunk
cdone:
	VZEROUPPER
	RET
