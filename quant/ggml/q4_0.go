package ggml

import "github.com/terse-llm/terse/tensor"

// Q4_0 is ggml's symmetric 4-bit type: blocks of 32 elements in 18 bytes.
// Byte j of qs holds element j in its low nibble and element j+16 in its
// high one (the packing Q4_1, Q5_0, Q5_1 and IQ4_NL share).
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      16    qs     nibbles q in 0..15
//
// Element = float32(q-8) * d.
const (
	q4Elems   = 32
	q4_0Bytes = 18
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

// quantQ4_0Ref is quantize_row_q4_0_ref.
func quantQ4_0Ref(x []float32, dst []byte) {
	for i := 0; i < len(x)/q4Elems; i++ {
		xb := x[i*q4Elems : (i+1)*q4Elems]
		b := dst[i*q4_0Bytes : (i+1)*q4_0Bytes]
		var amax, max float32
		for _, v := range xb {
			if amax < abs32(v) {
				amax = abs32(v)
				max = v
			}
		}
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		for j := 0; j < 16; j++ {
			xi0 := min(15, int32(int8(truncInt32(float32(xb[j]*id)+8.5))))
			xi1 := min(15, int32(int8(truncInt32(float32(xb[j+16]*id)+8.5))))
			b[2+j] = byte(xi0) | byte(xi1)<<4
		}
	}
}

// quantQ4_0Impl is quantize_row_q4_0_impl for one row.
func quantQ4_0Impl(x []float32, dst []byte, qw []float32) {
	var weight [32]float32
	var L [32]int8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/q4Elems; ib++ {
		xb := x[ib*q4Elems : (ib+1)*q4Elems]
		b := dst[ib*q4_0Bytes : (ib+1)*q4_0Bytes]
		legacyWeights(weight[:], xb, qw[ib*q4Elems:], sigma2)
		d := makeQxQuants(32, 8, xb, L[:], 1, weight[:])
		putF16(b, d)
		for j := 0; j < 16; j++ {
			b[2+j] = byte(L[j]) | byte(L[j+16])<<4
		}
	}
}

// q4_0Grid maps Q4_0 blocks to BlockGrids.
var q4_0Grid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels, g.off = gridSym, 5, 16, 8
		g.s[0] = f16(blk)
	},
	codes: func(blk []byte, codes []int) {
		getNibbles32(blk[2:18], codes)
	},
	encode: func(codes []int, blk []byte) {
		putNibbles32(codes, blk[2:18])
	},
}

// dotQ4_0 is the reference dot product (Type.Dot).
func dotQ4_0(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*18 : b*18+18]
		q := a.Q[b*32 : b*32+32]
		var s int32
		for j, v := range blk[2:18] {
			s += (int32(v&15)-8)*int32(q[j]) + (int32(v>>4)-8)*int32(q[j+16])
		}
		sum += float32(s) * (f16(blk) * dy)
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.Q4_0, BlockSize: q4Elems, BlockBytes: q4_0Bytes, Scales: []int{0},
		Dequantize: dequantQ4_0, Quantize: quantQ4_0Ref, QuantizeWeighted: quantQ4_0Impl,
		Act: ActQ8_0, Dot: dotQ4_0,
		grid: q4_0Grid,
	})
}
