package ggml

// Q6_K is ggml's 6-bit k-quant: super-blocks of 256 elements in 210 bytes,
// split into 16 sub-blocks of 16, each with a signed 8-bit scale.
//
//	offset size  field
//	0      128   ql      low 4 bits
//	128    64    qh      high 2 bits
//	192    16    scales  int8 scales
//	208    2     d       binary16 super-block scale
//
// The elements come in two halves of 128; half h reads ql[64h:64h+64],
// qh[32h:32h+32] and scales[8h:8h+8]. For l = 0..31 within a half:
//
//	element l      low nibble of ql[l],    qh[l] bits 0-1
//	element l+32   low nibble of ql[l+32], qh[l] bits 2-3
//	element l+64   high nibble of ql[l],   qh[l] bits 4-5
//	element l+96   high nibble of ql[l+32], qh[l] bits 6-7
//
// giving q in 0..63. Element l+32k uses scale sc = scales[l/16 + 2k] of the
// half and is (d*float32(sc)) * float32(q-32), the first product rounded to
// float32 as in ggml.
const q6KBytes = 210

func dequantQ6K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q6KBytes : (i+1)*q6KBytes]
		y := dst[i*qkK : (i+1)*qkK]
		d := f16(b[208:])
		for h := 0; h < 2; h++ {
			ql := b[64*h : 64*h+64]
			qh := b[128+32*h : 128+32*h+32]
			sc := b[192+8*h : 192+8*h+8]
			yh := y[128*h : 128*h+128]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int32(ql[l]&0x0f|(qh[l]&3)<<4) - 32
				q2 := int32(ql[l+32]&0x0f|(qh[l]>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				yh[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
				yh[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
				yh[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
				yh[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
			}
		}
	}
}
