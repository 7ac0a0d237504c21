package ggml

import "encoding/binary"

// Q5_0 and Q5_1 are ggml's 5-bit types over blocks of 32 elements. The low
// four bits are packed as in Q4_0 (byte j of qs: element j low nibble,
// element j+16 high nibble); the fifth bit of element j is bit j of the
// little-endian uint32 qh.
//
// Q5_0 (symmetric), 22 bytes a block:
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      4     qh     fifth bits
//	6      16    qs     low nibbles
//
// Element = float32(q-16) * d, q in 0..31.
//
// Q5_1 (with a minimum), 24 bytes a block:
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      2     m      binary16 minimum
//	4      4     qh     fifth bits
//	8      16    qs     low nibbles
//
// Element = float32(q)*d + m, the product rounded before the sum.
const (
	q5Elems   = 32
	q5_0Bytes = 22
	q5_1Bytes = 24
)

func dequantQ5_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/q5Elems; i++ {
		b := src[i*q5_0Bytes : (i+1)*q5_0Bytes]
		y := dst[i*q5Elems : (i+1)*q5Elems]
		d := f16(b)
		qh := binary.LittleEndian.Uint32(b[2:6])
		qs := b[6:22]
		for j := 0; j < 16; j++ {
			h0 := byte(qh>>uint(j)<<4) & 0x10
			h1 := byte(qh>>uint(j+12)) & 0x10
			y[j] = float32(int32(qs[j]&0x0f|h0)-16) * d
			y[j+16] = float32(int32(qs[j]>>4|h1)-16) * d
		}
	}
}

func dequantQ5_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/q5Elems; i++ {
		b := src[i*q5_1Bytes : (i+1)*q5_1Bytes]
		y := dst[i*q5Elems : (i+1)*q5Elems]
		d := f16(b)
		m := f16(b[2:])
		qh := binary.LittleEndian.Uint32(b[4:8])
		qs := b[8:24]
		for j := 0; j < 16; j++ {
			h0 := byte(qh>>uint(j)<<4) & 0x10
			h1 := byte(qh>>uint(j+12)) & 0x10
			y[j] = float32(float32(qs[j]&0x0f|h0)*d) + m
			y[j+16] = float32(float32(qs[j]>>4|h1)*d) + m
		}
	}
}
