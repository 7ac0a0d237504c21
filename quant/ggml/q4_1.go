package ggml

import (
	"math"

	"github.com/terse-llm/terse/tensor"
)

// Q4_1 is ggml's 4-bit type with a minimum: blocks of 32 elements in 20
// bytes, the nibbles packed as in Q4_0.
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      2     m      binary16 minimum
//	4      16    qs     nibbles q in 0..15
//
// Element = float32(q)*d + m, the product rounded before the sum.
const q4_1Bytes = 20

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

// quantQ4_1Ref is quantize_row_q4_1_ref.
func quantQ4_1Ref(x []float32, dst []byte) {
	for i := 0; i < len(x)/q4Elems; i++ {
		xb := x[i*q4Elems : (i+1)*q4Elems]
		b := dst[i*q4_1Bytes : (i+1)*q4_1Bytes]
		min, max := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range xb {
			if v < min {
				min = v
			}
			if v > max {
				max = v
			}
		}
		d := (max - min) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		putF16(b[2:], min)
		for j := 0; j < 16; j++ {
			x0 := float32((xb[j] - min) * id)
			x1 := float32((xb[j+16] - min) * id)
			xi0 := minInt32(15, int32(int8(truncInt32(x0+0.5))))
			xi1 := minInt32(15, int32(int8(truncInt32(x1+0.5))))
			b[4+j] = byte(xi0) | byte(xi1)<<4
		}
	}
}

// quantQ4_1Impl is quantize_row_q4_1_impl for one row.
func quantQ4_1Impl(x []float32, dst []byte, qw []float32) {
	var weight [32]float32
	var L, Laux [32]uint8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/q4Elems; ib++ {
		xb := x[ib*q4Elems : (ib+1)*q4Elems]
		b := dst[ib*q4_1Bytes : (ib+1)*q4_1Bytes]
		legacyWeights(weight[:], xb, qw[ib*q4Elems:], sigma2)
		d, m := makeQkx3Quants(32, 15, xb, weight[:], L[:], Laux[:], -0.9, 0.05, 36, false)
		putF16(b, d)
		putF16(b[2:], -m)
		for j := 0; j < 16; j++ {
			b[4+j] = L[j] | L[j+16]<<4
		}
	}
}

// q4_1Grid maps Q4_1 blocks to BlockGrids.
var q4_1Grid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels = gridAffine, 5, 16
		g.s[0], g.m[0] = f16(blk), f16(blk[2:])
	},
	codes: func(blk []byte, codes []int) {
		getNibbles32(blk[4:20], codes)
	},
	encode: func(codes []int, blk []byte) {
		putNibbles32(codes, blk[4:20])
	},
}

// dotQ4_1 is the reference dot product (Type.Dot).
func dotQ4_1(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*20 : b*20+20]
		q := a.Q[b*32 : b*32+32]
		var s int32
		for j, v := range blk[4:20] {
			s += int32(v&15)*int32(q[j]) + int32(v>>4)*int32(q[j+16])
		}
		sum += float32(s)*(f16(blk)*dy) + f16(blk[2:])*a.S[b]
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.Q4_1, BlockSize: q4Elems, BlockBytes: q4_1Bytes, Scales: []int{0, 2},
		Dequantize: dequantQ4_1, Quantize: quantQ4_1Ref, QuantizeWeighted: quantQ4_1Impl,
		Act: ActQ8_0, Dot: dotQ4_1,
		grid: q4_1Grid,
	})
}
