package ggml

// Q4_0 and Q4_1 are ggml's 4-bit types over blocks of 32 elements. Byte j
// of qs holds element j in its low nibble and element j+16 in its high one.
//
// Q4_0 (symmetric), 18 bytes a block:
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      16    qs     nibbles q in 0..15
//
// Element = float32(q-8) * d.
//
// Q4_1 (with a minimum), 20 bytes a block:
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      2     m      binary16 minimum
//	4      16    qs     nibbles q in 0..15
//
// Element = float32(q)*d + m, the product rounded before the sum.
const (
	q4Elems   = 32
	q4_0Bytes = 18
	q4_1Bytes = 20
)

func dequantQ4_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/q4Elems; i++ {
		b := src[i*q4_0Bytes : (i+1)*q4_0Bytes]
		y := dst[i*q4Elems : (i+1)*q4Elems]
		d := f16(b)
		qs := b[2:18]
		for j := 0; j < 16; j++ {
			y[j] = float32(int32(qs[j]&0x0f)-8) * d
			y[j+16] = float32(int32(qs[j]>>4)-8) * d
		}
	}
}

func dequantQ4_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/q4Elems; i++ {
		b := src[i*q4_1Bytes : (i+1)*q4_1Bytes]
		y := dst[i*q4Elems : (i+1)*q4Elems]
		d := f16(b)
		m := f16(b[2:])
		qs := b[4:20]
		for j := 0; j < 16; j++ {
			y[j] = float32(float32(qs[j]&0x0f)*d) + m
			y[j+16] = float32(float32(qs[j]>>4)*d) + m
		}
	}
}
