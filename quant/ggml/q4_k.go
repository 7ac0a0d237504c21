package ggml

// Q4_K and Q5_K are ggml's 4- and 5-bit k-quants: super-blocks of 256
// elements split into 8 sub-blocks of 32, each with a 6-bit scale and a
// 6-bit minimum packed into 12 bytes (see scaleMinK4).
//
// Q4_K, 144 bytes a block:
//
//	offset size  field
//	0      2     d       binary16 super-block scale for the scales
//	2      2     dmin    binary16 super-block scale for the mins
//	4      12    scales  packed 6-bit scales and mins
//	16     128   qs      4-bit quants
//
// Q5_K, 176 bytes a block:
//
//	offset size  field
//	0      2     d
//	2      2     dmin
//	4      12    scales
//	16     32    qh      fifth bits
//	48     128   qs      low 4 bits
//
// The elements come in four chunks of 64, chunk c reading qs bytes
// 32c..32c+31: their low nibbles are sub-block 2c, their high nibbles
// sub-block 2c+1. In Q5_K the fifth bit of the element from byte l of the
// chunk is bit 2c (low nibble) or 2c+1 (high nibble) of qh[l] and adds 16.
//
// For sub-block s: d1 = d*float32(sc), m1 = dmin*float32(m), each rounded to
// float32; element = float32(d1*float32(q)) - m1.
const (
	q4KBytes = 144
	q5KBytes = 176
)

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j (0..7): for
// j < 4 they are the low six bits of bytes j and j+4; for j >= 4 their low
// nibbles are in byte j+4 (scale low, min high) and their top two bits are
// the top two bits of bytes j-4 (scale) and j (min).
func scaleMinK4(j int, q []byte) (sc, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

func dequantQ4K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q4KBytes : (i+1)*q4KBytes]
		y := dst[i*qkK : (i+1)*qkK]
		d := f16(b)
		dmin := f16(b[2:])
		scales := b[4:16]
		for c := 0; c < 4; c++ {
			sc, m := scaleMinK4(2*c, scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = scaleMinK4(2*c+1, scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			q := b[16+32*c : 16+32*c+32]
			lo := y[64*c : 64*c+32]
			hi := y[64*c+32 : 64*c+64]
			for l := range q {
				lo[l] = float32(d1*float32(q[l]&0x0f)) - m1
				hi[l] = float32(d2*float32(q[l]>>4)) - m2
			}
		}
	}
}

func dequantQ5K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q5KBytes : (i+1)*q5KBytes]
		y := dst[i*qkK : (i+1)*qkK]
		d := f16(b)
		dmin := f16(b[2:])
		scales := b[4:16]
		qh := b[16:48]
		for c := 0; c < 4; c++ {
			sc, m := scaleMinK4(2*c, scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = scaleMinK4(2*c+1, scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			s1 := 2 * uint(c) // qh bit of the low nibbles; s1+1 of the high
			q := b[48+32*c : 48+32*c+32]
			lo := y[64*c : 64*c+32]
			hi := y[64*c+32 : 64*c+64]
			for l := range q {
				v1 := q[l]&0x0f | (qh[l]>>s1&1)<<4
				v2 := q[l]>>4 | (qh[l]>>(s1+1)&1)<<4
				lo[l] = float32(d1*float32(v1)) - m1
				hi[l] = float32(d2*float32(v2)) - m2
			}
		}
	}
}
