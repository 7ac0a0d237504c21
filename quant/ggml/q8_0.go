package ggml

import (
	"math"

	"github.com/terse-llm/terse/tensor"
)

// Q8_0 is ggml's symmetric 8-bit type: blocks of 32 elements in 34 bytes.
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      32    qs     int8 quants, element j is qs[j]
//
// Element j is float32(qs[j]) * d. Importance weights do not change it.
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

// quantQ8_0Ref is quantize_row_q8_0_ref.
func quantQ8_0Ref(x []float32, dst []byte) {
	for i := 0; i < len(x)/q8_0Elems; i++ {
		xb := x[i*q8_0Elems : (i+1)*q8_0Elems]
		b := dst[i*q8_0Bytes : (i+1)*q8_0Bytes]
		var amax float32
		for _, v := range xb {
			if a := abs32(v); !(amax > a) {
				amax = a
			}
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		for j, v := range xb {
			r := float32(math.Round(float64(v * id)))
			b[2+j] = byte(truncInt32(r))
		}
	}
}

// q8_0Grid maps Q8_0 blocks to BlockGrids.
var q8_0Grid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels, g.off = gridSym, 5, 256, 128
		g.s[0] = f16(blk)
	},
	codes: func(blk []byte, codes []int) {
		for i := range codes {
			codes[i] = int(int8(blk[2+i])) + 128
		}
	},
	encode: func(codes []int, blk []byte) {
		for i, c := range codes {
			blk[2+i] = byte(int8(c - 128))
		}
	},
}

// dotQ8_0 is the reference dot product (Type.Dot).
func dotQ8_0(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*34 : b*34+34]
		q := a.Q[b*32 : b*32+32]
		var s int32
		for i, v := range blk[2:34] {
			s += int32(int8(v)) * int32(q[i])
		}
		sum += float32(s) * (f16(blk) * dy)
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.Q8_0, BlockSize: q8_0Elems, BlockBytes: q8_0Bytes, Scales: []int{0},
		Dequantize: dequantQ8_0, Quantize: quantQ8_0Ref, QuantizeWeighted: nil,
		Act: ActQ8_0, Dot: dotQ8_0,
		grid: q8_0Grid,
	})
}
