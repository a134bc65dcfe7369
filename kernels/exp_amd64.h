// Exp32's algorithm (exp.go) for 16 lanes at a time, shared by the kernels
// that need e^x: EXPCONSTS loads its constants into Z22-Z30 (clobbering AX),
// EXP16 replaces Z0 = x by r and leaves e^x in Z2 (Z1 clobbered). The
// constants: log2(e), ln2 split high and low, the Taylor coefficients 1/720,
// 1/120, 1/24, 1/6, 1/2, and 1.

#define EXPCONSTS \
	MOVL $0x3fb8aa3b, AX; \
	VPBROADCASTD AX, Z22; \
	MOVL $0x3f318000, AX; \
	VPBROADCASTD AX, Z23; \
	MOVL $0xb95e8083, AX; \
	VPBROADCASTD AX, Z24; \
	MOVL $0x3ab60b61, AX; \
	VPBROADCASTD AX, Z25; \
	MOVL $0x3c088889, AX; \
	VPBROADCASTD AX, Z26; \
	MOVL $0x3d2aaaab, AX; \
	VPBROADCASTD AX, Z27; \
	MOVL $0x3e2aaaab, AX; \
	VPBROADCASTD AX, Z28; \
	MOVL $0x3f000000, AX; \
	VPBROADCASTD AX, Z29; \
	MOVL $0x3f800000, AX; \
	VPBROADCASTD AX, Z30

#define EXP16 \
	VMULPS Z22, Z0, Z1; \
	VRNDSCALEPS $0, Z1, Z1; \
	VFNMADD231PS Z23, Z1, Z0; \
	VFNMADD231PS Z24, Z1, Z0; \
	VMOVAPS Z25, Z2; \
	VFMADD213PS Z26, Z0, Z2; \
	VFMADD213PS Z27, Z0, Z2; \
	VFMADD213PS Z28, Z0, Z2; \
	VFMADD213PS Z29, Z0, Z2; \
	VFMADD213PS Z30, Z0, Z2; \
	VFMADD213PS Z30, Z0, Z2; \
	VSCALEFPS Z1, Z2, Z2
