package ggml

import (
	"encoding/binary"
	"math"

	"github.com/terse-llm/terse/tensor"
)

// Q5_1 is ggml's 5-bit type with a minimum: blocks of 32 elements in 24
// bytes, the bits packed as in Q5_0.
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      2     m      binary16 minimum
//	4      4     qh     fifth bits
//	8      16    qs     low nibbles
//
// Element = float32(q)*d + m, the product rounded before the sum. ggml
// pairs Q5_1 with Q8_1 activations: the integer path's Q8_0 format with
// its block sums S (as Q4_1).
const q5_1Bytes = 24

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

// quantQ5_1Ref is quantize_row_q5_1_ref.
func quantQ5_1Ref(x []float32, dst []byte) {
	for i := 0; i < len(x)/q5Elems; i++ {
		xb := x[i*q5Elems : (i+1)*q5Elems]
		b := dst[i*q5_1Bytes : (i+1)*q5_1Bytes]
		min, max := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range xb {
			if v < min {
				min = v
			}
			if v > max {
				max = v
			}
		}
		d := (max - min) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		putF16(b[2:], min)
		var qh uint32
		for j := 0; j < 16; j++ {
			x0 := float32((xb[j] - min) * id)
			x1 := float32((xb[j+16] - min) * id)
			xi0 := byte(truncInt32(x0 + 0.5))
			xi1 := byte(truncInt32(x1 + 0.5))
			b[8+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << uint(j)
			qh |= uint32(xi1&0x10) >> 4 << uint(j+16)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

// quantQ5_1Impl is quantize_row_q5_1_impl for one row.
func quantQ5_1Impl(x []float32, dst []byte, qw []float32) {
	var weight [32]float32
	var L, Laux [32]uint8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/q5Elems; ib++ {
		xb := x[ib*q5Elems : (ib+1)*q5Elems]
		b := dst[ib*q5_1Bytes : (ib+1)*q5_1Bytes]
		legacyWeights(weight[:], xb, qw[ib*q5Elems:], sigma2)
		d, m := makeQkx3Quants(32, 31, xb, weight[:], L[:], Laux[:], -0.9, 0.05, 36, false)
		putF16(b, d)
		putF16(b[2:], -m)
		var qh uint32
		for j := 0; j < 16; j++ {
			xi0, xi1 := L[j], L[j+16]
			b[8+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << uint(j)
			qh |= uint32(xi1&0x10) >> 4 << uint(j+16)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

// q5_1Grid maps Q5_1 blocks to BlockGrids.
var q5_1Grid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels = gridAffine, 5, 32
		g.s[0], g.m[0] = f16(blk), f16(blk[2:])
	},
	codes: func(blk []byte, codes []int) {
		getQ5Codes(blk[4:8], blk[8:24], codes)
	},
	encode: func(codes []int, blk []byte) {
		putQ5Codes(codes, blk[4:8], blk[8:24])
	},
}

// dotQ5_1 is the reference dot product (Type.Dot), as
// ggml_vec_dot_q5_1_q8_1: per block d·dy·Σ q·qy + m·s.
func dotQ5_1(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*q5_1Bytes : (b+1)*q5_1Bytes]
		q := a.Q[b*q5Elems : (b+1)*q5Elems]
		qh := binary.LittleEndian.Uint32(blk[4:8])
		var s int32
		for j, v := range blk[8:24] {
			lo := int32(v&15) | int32(qh>>uint(j)&1)<<4
			hi := int32(v>>4) | int32(qh>>uint(j+16)&1)<<4
			s += lo*int32(q[j]) + hi*int32(q[j+16])
		}
		sum += float32(s)*(f16(blk)*dy) + f16(blk[2:])*a.S[b]
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.Q5_1, BlockSize: q5Elems, BlockBytes: q5_1Bytes, Scales: []int{0, 2},
		Dequantize: dequantQ5_1, Quantize: quantQ5_1Ref, QuantizeWeighted: quantQ5_1Impl,
		Act: ActQ8_0, Dot: dotQ5_1,
		grid: q5_1Grid,
	})
}
