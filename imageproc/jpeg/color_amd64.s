//go:build amd64 && !purego

#include "textflag.h"
#include "consts_amd64.h"

// YCbCr -> RGB for libjpeg's fixed-point formulas (jdcolor.c), 16 pixels at
// a time in int32 lanes, then interleaved with byte shuffles.

DATA rgbmask<>+0(SB)/8, $0x8002808001808000
DATA rgbmask<>+8(SB)/8, $0x0580800480800380
DATA rgbmask<>+16(SB)/8, $0x0280800180800080
DATA rgbmask<>+24(SB)/8, $0x8080048080038080
DATA rgbmask<>+32(SB)/8, $0x8080018080008080
DATA rgbmask<>+40(SB)/8, $0x8004808003808002
DATA rgbmask<>+48(SB)/8, $0x8080078080068080
DATA rgbmask<>+56(SB)/8, $0x800a808009808008
DATA rgbmask<>+64(SB)/8, $0x8007808006808005
DATA rgbmask<>+72(SB)/8, $0x0a80800980800880
DATA rgbmask<>+80(SB)/8, $0x0780800680800580
DATA rgbmask<>+88(SB)/8, $0x8080098080088080
DATA rgbmask<>+96(SB)/8, $0x0d80800c80800b80
DATA rgbmask<>+104(SB)/8, $0x80800f80800e8080
DATA rgbmask<>+112(SB)/8, $0x80800c80800b8080
DATA rgbmask<>+120(SB)/8, $0x800f80800e80800d
DATA rgbmask<>+128(SB)/8, $0x800c80800b80800a
DATA rgbmask<>+136(SB)/8, $0x0f80800e80800d80
GLOBL rgbmask<>(SB), RODATA|NOPTR, $144

C8(k128, 128)
C8(kCrR, 91881)
C8(kCbB, 116130)
C8(kCbG, -22554)
C8(kCrG, -46802)
C8(kHalf, 32768)

// Word constants for the chroma upsampling.
DATA k8w<>+0(SB)/8, $0x0008000800080008
DATA k8w<>+8(SB)/8, $0x0008000800080008
DATA k8w<>+16(SB)/8, $0x0008000800080008
DATA k8w<>+24(SB)/8, $0x0008000800080008
GLOBL k8w<>(SB), RODATA|NOPTR, $32
DATA k7w<>+0(SB)/8, $0x0007000700070007
DATA k7w<>+8(SB)/8, $0x0007000700070007
DATA k7w<>+16(SB)/8, $0x0007000700070007
DATA k7w<>+24(SB)/8, $0x0007000700070007
GLOBL k7w<>(SB), RODATA|NOPTR, $32


// CHANNEL finishes one channel of 16 pixels whose chroma terms are in Y6
// (pixels 0-7) and Y7 (8-15): add the rounding half, shift, add the luma
// (Y0, Y1), and pack with clamping to 16 bytes in OUT.
#define CHANNEL(OUT) \
	VPADDD Y14, Y6, Y6; \
	VPADDD Y14, Y7, Y7; \
	VPSRAD $16, Y6, Y6; \
	VPSRAD $16, Y7, Y7; \
	VPADDD Y0, Y6, Y6; \
	VPADDD Y1, Y7, Y7; \
	VPACKSSDW Y7, Y6, Y6; \
	VPERMQ $0xD8, Y6, Y6; \
	VEXTRACTI128 $1, Y6, X7; \
	VPACKUSWB X7, X6, OUT

// INTERLEAVE writes 16 bytes of RGB at OUT(DI): the bytes of R (X10), G
// (X11) and B (X12) that belong there, picked by the shuffles at MR, MG, MB.
#define INTERLEAVE(MR, MG, MB, OUT) \
	VPSHUFB rgbmask<>+MR(SB), X10, X0; \
	VPSHUFB rgbmask<>+MG(SB), X11, X1; \
	VPSHUFB rgbmask<>+MB(SB), X12, X2; \
	VPOR X1, X0, X0; \
	VPOR X2, X0, X0; \
	VMOVDQU X0, OUT(DI)

// func yccToRGBAVX2(dst, y, cb, cr *uint8, n int)
//
// dst[3i..3i+2] = the RGB of luma y[i] and chroma cb[i], cr[i], for n a
// positive multiple of 16, exactly as ycbcrToRGB's tables compute it.
TEXT ·yccToRGBAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ cb+16(FP), R8
	MOVQ cr+24(FP), R9
	MOVQ n+32(FP), CX
	VMOVDQU k128<>(SB), Y15
	VMOVDQU kHalf<>(SB), Y14
yloop:
	VPMOVZXBD (SI), Y0
	VPMOVZXBD 8(SI), Y1
	VPMOVZXBD (R8), Y2
	VPMOVZXBD 8(R8), Y3
	VPMOVZXBD (R9), Y4
	VPMOVZXBD 8(R9), Y5
	VPSUBD Y15, Y2, Y2
	VPSUBD Y15, Y3, Y3
	VPSUBD Y15, Y4, Y4
	VPSUBD Y15, Y5, Y5
	// R = y + ((91881 cr + 32768) >> 16)
	VPMULLD kCrR<>(SB), Y4, Y6
	VPMULLD kCrR<>(SB), Y5, Y7
	CHANNEL(X10)
	// G = y + ((-22554 cb - 46802 cr + 32768) >> 16)
	VPMULLD kCbG<>(SB), Y2, Y6
	VPMULLD kCbG<>(SB), Y3, Y7
	VPMULLD kCrG<>(SB), Y4, Y8
	VPMULLD kCrG<>(SB), Y5, Y9
	VPADDD Y8, Y6, Y6
	VPADDD Y9, Y7, Y7
	CHANNEL(X11)
	// B = y + ((116130 cb + 32768) >> 16)
	VPMULLD kCbB<>(SB), Y2, Y6
	VPMULLD kCbB<>(SB), Y3, Y7
	CHANNEL(X12)
	// Interleave R (X10), G (X11), B (X12) into 48 bytes.
	INTERLEAVE(0, 16, 32, 0)
	INTERLEAVE(48, 64, 80, 16)
	INTERLEAVE(96, 112, 128, 32)
	ADDQ $16, SI
	ADDQ $16, R8
	ADDQ $16, R9
	ADDQ $48, DI
	SUBQ $16, CX
	JNZ yloop
	VZEROUPPER
	RET

// func h2v2RowAVX2(out, cur, near *uint8, n int)
//
// The interior of h2v2Row: for 16 chroma samples i at a time (n a positive
// multiple of 16, with cur[-1..n] and near[-1..n] readable), column sums
// s = 3 cur + near, then out[2i] = (3 s[i] + s[i-1] + 8) >> 4 and
// out[2i+1] = (3 s[i] + s[i+1] + 7) >> 4, stored as the bytes of one word.
TEXT ·h2v2RowAVX2(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ cur+8(FP), SI
	MOVQ near+16(FP), DX
	MOVQ n+24(FP), CX
	VMOVDQU k8w<>(SB), Y14
	VMOVDQU k7w<>(SB), Y15
hloop:
	VPMOVZXBW (SI), Y0
	VPMOVZXBW (DX), Y1
	VPMOVZXBW -1(SI), Y2
	VPMOVZXBW -1(DX), Y3
	VPMOVZXBW 1(SI), Y4
	VPMOVZXBW 1(DX), Y5
	// s = 3 cur + near for i, i-1, i+1
	VPADDW Y0, Y0, Y6
	VPADDW Y6, Y0, Y0
	VPADDW Y1, Y0, Y0
	VPADDW Y2, Y2, Y6
	VPADDW Y6, Y2, Y2
	VPADDW Y3, Y2, Y2
	VPADDW Y4, Y4, Y6
	VPADDW Y6, Y4, Y4
	VPADDW Y5, Y4, Y4
	// 3 s[i]
	VPADDW Y0, Y0, Y6
	VPADDW Y6, Y0, Y0
	// even = (3 s + s[i-1] + 8) >> 4, odd = (3 s + s[i+1] + 7) >> 4
	VPADDW Y2, Y0, Y2
	VPADDW Y14, Y2, Y2
	VPSRLW $4, Y2, Y2
	VPADDW Y4, Y0, Y4
	VPADDW Y15, Y4, Y4
	VPSRLW $4, Y4, Y4
	VPSLLW $8, Y4, Y4
	VPOR Y4, Y2, Y2
	VMOVDQU Y2, (DI)
	ADDQ $16, SI
	ADDQ $16, DX
	ADDQ $32, DI
	SUBQ $16, CX
	JNZ hloop
	VZEROUPPER
	RET
