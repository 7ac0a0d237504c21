package ggml

// Q8_0 is ggml's symmetric 8-bit type: blocks of 32 elements in 34 bytes.
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      32    qs     int8 quants, element j is qs[j]
//
// Element j is float32(qs[j]) * d.
const (
	q8_0Elems = 32
	q8_0Bytes = 34
)

func dequantQ8_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/q8_0Elems; i++ {
		b := src[i*q8_0Bytes : (i+1)*q8_0Bytes]
		y := dst[i*q8_0Elems : (i+1)*q8_0Elems]
		d := f16(b)
		qs := b[2:34]
		for j := range y {
			y[j] = float32(int8(qs[j])) * d
		}
	}
}
