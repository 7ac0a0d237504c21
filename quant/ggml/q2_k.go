package ggml

// Q2_K is ggml's 2-bit k-quant: super-blocks of 256 elements in 84 bytes,
// split into 16 sub-blocks of 16 elements, each with a 4-bit scale and a
// 4-bit minimum.
//
//	offset size  field
//	0      16    scales  byte s: low nibble scale, high nibble min of sub-block s
//	16     64    qs      2-bit quants
//	80     2     d       binary16 super-block scale for the scales
//	82     2     dmin    binary16 super-block scale for the mins
//
// The 256 elements come in two halves of 128, each reading 32 bytes of qs.
// Within a half, the 2-bit field at shift 2k (k = 0..3) of bytes 0..15 forms
// the next 16 elements, then that field of bytes 16..31 the 16 after; the
// sub-block index s counts these runs of 16 in output order (0..15).
//
// For sub-block s: dl = d*float32(sc), ml = dmin*float32(m), each rounded
// to float32; element = float32(dl*float32(q)) - ml.
const (
	qkK      = 256 // elements in a k-quant super-block
	q2KBytes = 84
)

func dequantQ2K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q2KBytes : (i+1)*q2KBytes]
		y := dst[i*qkK : (i+1)*qkK]
		scales := b[0:16]
		d := f16(b[80:])
		dmin := f16(b[82:])
		s := 0
		o := 0
		for half := 0; half < 2; half++ {
			q := b[16+32*half : 16+32*half+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for part := 0; part < 2; part++ {
					sc := scales[s]
					s++
					dl := d * float32(sc&0x0f)
					ml := dmin * float32(sc>>4)
					qq := q[16*part : 16*part+16]
					yy := y[o : o+16]
					for l := range yy {
						yy[l] = float32(dl*float32((qq[l]>>shift)&3)) - ml
					}
					o += 16
				}
			}
		}
	}
}
