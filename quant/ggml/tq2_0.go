package ggml

import (
	"math"

	"github.com/terse-llm/terse/tensor"
)

// TQ2_0 is ggml's ternary type with 2 bits per element: super-blocks of
// 256 elements in 66 bytes.
//
//	offset size  field
//	0      64    qs  2-bit codes q in 0..2 (3 is never written): element
//	                 32·4·c + 32·l + m is bits 2l..2l+1 of byte 32c + m
//	                 (c = 0, 1; l = 0..3; m = 0..31)
//	64     2     d   binary16 scale
//
// element = float32(q-1) * d.
const (
	tq2Elems = 256
	tq2Bytes = 66
)

func dequantTQ2(src []byte, dst []float32) {
	for i := 0; i < len(dst)/tq2Elems; i++ {
		b := src[i*tq2Bytes : (i+1)*tq2Bytes]
		y := dst[i*tq2Elems : (i+1)*tq2Elems]
		d := f16(b[64:])
		for c := 0; c < 2; c++ {
			for l := 0; l < 4; l++ {
				for m := 0; m < 32; m++ {
					q := int32(b[32*c+m]>>(2*uint(l))) & 3
					y[128*c+32*l+m] = float32(q-1) * d
				}
			}
		}
	}
}

// roundAway is C's lroundf: the nearest integer, halves away from zero.
func roundAway(f float32) int32 { return int32(math.Round(float64(f))) }

// ternaryScale returns ggml's ternary block scale, max|x|, and its inverse
// (0 for an all-zero block), as quantize_row_tq*_ref compute them.
func ternaryScale(x []float32) (d, id float32) {
	for _, v := range x {
		d = max(d, abs32(v))
	}
	if d != 0 {
		id = 1 / d
	}
	return d, id
}

// quantTQ2 is quantize_row_tq2_0_ref (ggml ignores importance weights).
func quantTQ2(src []float32, dst []byte) {
	for i := 0; i < len(src)/tq2Elems; i++ {
		x := src[i*tq2Elems : (i+1)*tq2Elems]
		b := dst[i*tq2Bytes : (i+1)*tq2Bytes]
		d, id := ternaryScale(x)
		putF16(b[64:], d)
		for c := 0; c < 2; c++ {
			for m := 0; m < 32; m++ {
				var q uint8
				for l := 0; l < 4; l++ {
					xi := roundAway(x[128*c+32*l+m]*id) + 1
					q += uint8(xi&3) << (2 * uint(l))
				}
				b[32*c+m] = q
			}
		}
	}
}

// dotTQ2 is the reference dot product (Type.Dot), as ggml_vec_dot_tq2_0_q8_K.
func dotTQ2(w []byte, a *ActRow) float32 {
	var sum float32
	for bi, dy := range a.D {
		b := w[bi*tq2Bytes : (bi+1)*tq2Bytes]
		q := a.Q[bi*tq2Elems : (bi+1)*tq2Elems]
		var sumi int32
		for c := 0; c < 2; c++ {
			for l := 0; l < 4; l++ {
				for m := 0; m < 32; m++ {
					sumi += int32(q[128*c+32*l+m]) * (int32(b[32*c+m]>>(2*uint(l)))&3 - 1)
				}
			}
		}
		d := dy * f16(b[64:])
		sum += float32(float32(sumi) * d)
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.TQ2_0, BlockSize: tq2Elems, BlockBytes: tq2Bytes, Scales: []int{64},
		Dequantize: dequantTQ2, Quantize: quantTQ2, grid: tq2Grid,
		Act: ActQ8_K, Dot: dotTQ2,
	})
}
