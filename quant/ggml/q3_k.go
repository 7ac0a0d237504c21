package ggml

// Q3_K is ggml's 3-bit k-quant: super-blocks of 256 elements in 110 bytes,
// split into 16 sub-blocks of 16 elements, each with a signed 6-bit scale.
//
//	offset size  field
//	0      32    hmask   high (third) bits
//	32     64    qs      low 2 bits
//	96     12    scales  sixteen 6-bit scales, packed
//	108    2     d       binary16 super-block scale
//
// Scale s (0..15) is (low4 | high2<<4) - 32, where low4 is the low nibble of
// scales[s] for s < 8 and the high nibble of scales[s-8] otherwise, and
// high2 is bits 2*(s/4)..2*(s/4)+1 of scales[8+s%4].
//
// The low bits are laid out as in Q2_K: two halves of 128 elements, each
// reading 32 bytes of qs; within a half, the 2-bit field at shift 2k of
// bytes 0..15 and then of bytes 16..31 form consecutive runs of 16. The
// third bit of the element read from qs byte l (l = 0..31 within the half)
// at run pair r (r = 0..7 counting across both halves) is bit r of hmask[l].
// A clear bit means the element's value is q-4, a set bit q.
//
// For sub-block s: dl = d * float32(scale), element = dl * float32(value).
const q3KBytes = 110

func dequantQ3K(src []byte, dst []float32) {
	var sc [16]int32
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q3KBytes : (i+1)*q3KBytes]
		y := dst[i*qkK : (i+1)*qkK]
		hmask := b[0:32]
		packed := b[96:108]
		d := f16(b[108:])
		for s := 0; s < 8; s++ {
			hi := packed[8+s%4]
			sc[s] = int32(packed[s]&0x0f|(hi>>(2*uint(s/4))&3)<<4) - 32
			sc[s+8] = int32(packed[s]>>4|(hi>>(2*uint(s/4+2))&3)<<4) - 32
		}
		s := 0
		o := 0
		hbit := uint(0) // hmask bit of the current run pair
		for half := 0; half < 2; half++ {
			q := b[32+32*half : 32+32*half+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for part := 0; part < 2; part++ {
					dl := d * float32(sc[s])
					s++
					qq := q[16*part : 16*part+16]
					hm := hmask[16*part : 16*part+16]
					yy := y[o : o+16]
					for l := range yy {
						// q-4 when the high bit is clear, q when it is set
						v := int32(qq[l]>>shift&3|(hm[l]>>hbit&1)<<2) - 4
						yy[l] = dl * float32(v)
					}
					o += 16
				}
				hbit++
			}
		}
	}
}
