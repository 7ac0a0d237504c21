package ggml

// IQ4_NL and IQ4_XS are ggml's non-linear 4-bit types: a nibble indexes the
// fixed codebook iq4nlValues, which is then scaled. Nibbles are packed as in
// Q4_0 within each 32-element group: byte j of the group's 16 bytes holds
// element j (low nibble) and element j+16 (high nibble).
//
// IQ4_NL, blocks of 32 elements in 18 bytes:
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      16    qs     nibbles
//
// Element = d * float32(iq4nlValues[q]).
//
// IQ4_XS, super-blocks of 256 elements (eight groups of 32) in 136 bytes:
//
//	offset size  field
//	0      2     d        binary16 super-block scale
//	2      2     scales_h little-endian uint16: bits 2g..2g+1 are the high
//	                      two bits of group g's 6-bit scale
//	4      4     scales_l nibble g (byte g/2, low nibble for even g) holds
//	                      the low four bits of group g's scale
//	8      128   qs       16 bytes of nibbles per group
//
// Group g's scale is dl = d * float32(ls-32), ls the 6-bit value; element =
// dl * float32(iq4nlValues[q]).
const (
	iq4nlElems  = 32
	iq4nlBytes  = 18
	iq4xsElems  = 256
	iq4xsBytes  = 136
	iq4xsGroups = 8
)

// iq4nlValues is ggml's kvalues_iq4nl codebook.
var iq4nlValues = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

func dequantIQ4NL(src []byte, dst []float32) {
	for i := 0; i < len(dst)/iq4nlElems; i++ {
		b := src[i*iq4nlBytes : (i+1)*iq4nlBytes]
		y := dst[i*iq4nlElems : (i+1)*iq4nlElems]
		d := f16(b)
		qs := b[2:18]
		for j := 0; j < 16; j++ {
			y[j] = d * float32(iq4nlValues[qs[j]&0x0f])
			y[j+16] = d * float32(iq4nlValues[qs[j]>>4])
		}
	}
}

func dequantIQ4XS(src []byte, dst []float32) {
	for i := 0; i < len(dst)/iq4xsElems; i++ {
		b := src[i*iq4xsBytes : (i+1)*iq4xsBytes]
		y := dst[i*iq4xsElems : (i+1)*iq4xsElems]
		d := f16(b)
		sh := uint16(b[2]) | uint16(b[3])<<8
		sl := b[4:8]
		for g := 0; g < iq4xsGroups; g++ {
			ls := int32(sl[g/2]>>(4*uint(g%2)))&0x0f | int32(sh>>(2*uint(g))&3)<<4
			dl := d * float32(ls-32)
			qs := b[8+16*g : 8+16*g+16]
			yg := y[32*g : 32*g+32]
			for j := 0; j < 16; j++ {
				yg[j] = dl * float32(iq4nlValues[qs[j]&0x0f])
				yg[j+16] = dl * float32(iq4nlValues[qs[j]>>4])
			}
		}
	}
}
