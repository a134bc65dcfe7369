// REDUCE16 stores at (ptr) the 16 sums of Z0..Z15, sum i being the total of
// Zi's 16 lanes: pairs are interleaved and added (Z0+Z1 by floats, then by
// float pairs), which leaves each 128-bit lane holding four partial sums,
// then 128-bit lanes are shuffled together and added twice. 45 instructions
// instead of 256 scalar additions.
#define PAIR_PS(a, b) \
	VUNPCKLPS b, a, Z16 \
	VUNPCKHPS b, a, Z17 \
	VADDPS    Z17, Z16, a

#define PAIR_PD(a, b) \
	VUNPCKLPD b, a, Z16 \
	VUNPCKHPD b, a, Z17 \
	VADDPS    Z17, Z16, a

#define LANES(a, b, dst) \
	VSHUFF32X4 $0x88, b, a, Z16 \
	VSHUFF32X4 $0xDD, b, a, Z17 \
	VADDPS     Z17, Z16, dst

#define REDUCE16(ptr) \
	PAIR_PS(Z0, Z1)   \
	PAIR_PS(Z2, Z3)   \
	PAIR_PS(Z4, Z5)   \
	PAIR_PS(Z6, Z7)   \
	PAIR_PS(Z8, Z9)   \
	PAIR_PS(Z10, Z11) \
	PAIR_PS(Z12, Z13) \
	PAIR_PS(Z14, Z15) \
	PAIR_PD(Z0, Z2)   \
	PAIR_PD(Z4, Z6)   \
	PAIR_PD(Z8, Z10)  \
	PAIR_PD(Z12, Z14) \
	LANES(Z0, Z4, Z18)  \
	LANES(Z8, Z12, Z19) \
	LANES(Z18, Z19, Z0) \
	VMOVUPS Z0, (ptr)

// ZERO16 clears the accumulators Z0..Z15.
#define ZERO16 \
	VPXORD Z0, Z0, Z0 \
	VPXORD Z1, Z1, Z1 \
	VPXORD Z2, Z2, Z2 \
	VPXORD Z3, Z3, Z3 \
	VPXORD Z4, Z4, Z4 \
	VPXORD Z5, Z5, Z5 \
	VPXORD Z6, Z6, Z6 \
	VPXORD Z7, Z7, Z7 \
	VPXORD Z8, Z8, Z8 \
	VPXORD Z9, Z9, Z9 \
	VPXORD Z10, Z10, Z10 \
	VPXORD Z11, Z11, Z11 \
	VPXORD Z12, Z12, Z12 \
	VPXORD Z13, Z13, Z13 \
	VPXORD Z14, Z14, Z14 \
	VPXORD Z15, Z15, Z15
