package ggml

import (
	"encoding/binary"

	"github.com/terse-llm/terse/tensor"
)

// Q5_0 is ggml's symmetric 5-bit type: blocks of 32 elements in 22 bytes.
// The low four bits are packed as in Q4_0 (byte j of qs: element j low
// nibble, element j+16 high nibble); the fifth bit of element j is bit j of
// the little-endian uint32 qh (as in Q5_1).
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      4     qh     fifth bits
//	6      16    qs     low nibbles
//
// Element = float32(q-16) * d, q in 0..31.
const (
	q5Elems   = 32
	q5_0Bytes = 22
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

// quantQ5_0Ref is quantize_row_q5_0_ref.
func quantQ5_0Ref(x []float32, dst []byte) {
	for i := 0; i < len(x)/q5Elems; i++ {
		xb := x[i*q5Elems : (i+1)*q5Elems]
		b := dst[i*q5_0Bytes : (i+1)*q5_0Bytes]
		var amax, max float32
		for _, v := range xb {
			if amax < abs32(v) {
				amax = abs32(v)
				max = v
			}
		}
		d := max / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		var qh uint32
		for j := 0; j < 16; j++ {
			xi0 := byte(minInt32(31, int32(int8(truncInt32(float32(xb[j]*id)+16.5)))))
			xi1 := byte(minInt32(31, int32(int8(truncInt32(float32(xb[j+16]*id)+16.5)))))
			b[6+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << uint(j)
			qh |= uint32(xi1&0x10) >> 4 << uint(j+16)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

// quantQ5_0Impl is quantize_row_q5_0_impl for one row.
func quantQ5_0Impl(x []float32, dst []byte, qw []float32) {
	var weight [32]float32
	var L [32]int8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/q5Elems; ib++ {
		xb := x[ib*q5Elems : (ib+1)*q5Elems]
		b := dst[ib*q5_0Bytes : (ib+1)*q5_0Bytes]
		legacyWeights(weight[:], xb, qw[ib*q5Elems:], sigma2)
		d := makeQxQuants(32, 16, xb, L[:], 1, weight[:])
		putF16(b, d)
		var qh uint32
		for j := 0; j < 16; j++ {
			xi0, xi1 := byte(L[j]), byte(L[j+16])
			b[6+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << uint(j)
			qh |= uint32(xi1&0x10) >> 4 << uint(j+16)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

// q5_0Grid maps Q5_0 blocks to BlockGrids.
var q5_0Grid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels, g.off = gridSym, 5, 32, 16
		g.s[0] = f16(blk)
	},
	codes: func(blk []byte, codes []int) {
		getQ5Codes(blk[2:6], blk[6:22], codes)
	},
	encode: func(codes []int, blk []byte) {
		putQ5Codes(codes, blk[2:6], blk[6:22])
	},
}

// dotQ5_0 is the reference dot product (Type.Dot).
func dotQ5_0(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*22 : b*22+22]
		q := a.Q[b*32 : b*32+32]
		qh := binary.LittleEndian.Uint32(blk[2:6])
		var s int32
		for j, v := range blk[6:22] {
			lo := int32(v&15) | int32(qh>>uint(j)&1)<<4
			hi := int32(v>>4) | int32(qh>>uint(j+16)&1)<<4
			s += (lo-16)*int32(q[j]) + (hi-16)*int32(q[j+16])
		}
		sum += float32(s) * (f16(blk) * dy)
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.Q5_0, BlockSize: q5Elems, BlockBytes: q5_0Bytes, Scales: []int{0},
		Dequantize: dequantQ5_0, Quantize: quantQ5_0Ref, QuantizeWeighted: quantQ5_0Impl,
		Act: ActQ8_0, Dot: dotQ5_0,
		grid: q5_0Grid,
	})
}
