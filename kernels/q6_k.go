package kernels

// Q6_K: super-blocks of 256 weights, 210 bytes: 128 bytes of low nibbles,
// 64 bytes of high 2-bit pairs, 16 int8 scales (one per 16 weights), then
// the float16 d. Each half of 128 weights takes 64 nibble bytes and 32
// pair bytes: weight l (l < 32) of the half is the low nibble of ql[l] and
// bits 0-1 of qh[l]; weight l+32 the low nibble of ql[l+32] and bits 2-3;
// l+64 the high nibble of ql[l] and bits 4-5; l+96 the high nibble of
// ql[l+32] and bits 6-7. Weight = d*scale*(q - 32).

// DequantizeQ6_K widens len(dst)/256 blocks of src into dst.
func DequantizeQ6_K(dst []float32, src []byte) {
	for b := range len(dst) / QKK {
		blk := src[b*Q6_KBytes : (b+1)*Q6_KBytes]
		d := f16At(blk[208:])
		var ds [16]float32
		for j, s := range blk[192:208] {
			ds[j] = d * float32(int8(s))
		}
		y := dst[b*QKK : (b+1)*QKK]
		for h := range 2 {
			ql := blk[h*64 : h*64+64]
			qh := blk[128+h*32 : 128+h*32+32]
			o := h * 128
			for l := range 32 {
				q := [4]int{
					int(ql[l]&0xf | (qh[l]&3)<<4),
					int(ql[l+32]&0xf | (qh[l]>>2&3)<<4),
					int(ql[l]>>4 | (qh[l]>>4&3)<<4),
					int(ql[l+32]>>4 | (qh[l]>>6&3)<<4),
				}
				for k, v := range q {
					e := o + l + 32*k
					y[e] = ds[e/16] * float32(v-32)
				}
			}
		}
	}
}
