package ggml

import "github.com/terse-llm/terse/tensor"

// IQ4_NL is ggml's non-linear 4-bit type: blocks of 32 elements in 18
// bytes, each nibble indexing the fixed codebook iq4nlValues, packed as in
// Q4_0 (byte j: element j low nibble, element j+16 high nibble).
//
//	offset size  field
//	0      2     d      binary16 scale
//	2      16    qs     nibbles
//
// Element = d * float32(iq4nlValues[q]).
const (
	iq4nlElems = 32
	iq4nlBytes = 18
)

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

// quantIQ4NL is quantize_iq4_nl: qwRow is nil or one row of weights.
func quantIQ4NL(src []float32, dst []byte, qwRow []float32) {
	var L [32]uint8
	var w [32]float32
	for ib := 0; ib < len(src)/iq4nlElems; ib++ {
		xb := src[ib*iq4nlElems : (ib+1)*iq4nlElems]
		b := dst[ib*iq4nlBytes : (ib+1)*iq4nlBytes]
		var qw []float32
		if qwRow != nil {
			qw = qwRow[ib*iq4nlElems:]
		}
		iq4Weights(w[:], xb, qw, iq4Sigma2(xb))
		d := iq4Block(xb, w[:], L[:])
		putF16(b, d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		for j, v := range xb {
			L[j] = uint8(bestIndexInt8(iq4nlValues[:], id*v))
		}
		packIQ4(L[:], b[2:18])
	}
}

// quantIQ4NLRef is quantIQ4NL without importance: llama-quantize runs the
// same search (see iq4.go).
func quantIQ4NLRef(src []float32, dst []byte) { quantIQ4NL(src, dst, nil) }

// iq4NLGrid maps IQ4_NL blocks to BlockGrids.
var iq4NLGrid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels = gridTable, 5, 16
		g.table = &iq4nlValues
		g.s[0] = f16(blk)
	},
	codes: func(blk []byte, codes []int) {
		getNibbles32(blk[2:18], codes)
	},
	encode: func(codes []int, blk []byte) {
		putNibbles32(codes, blk[2:18])
	},
}

// dotIQ4NL is the reference dot product (Type.Dot).
func dotIQ4NL(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*18 : b*18+18]
		q := a.Q[b*32 : b*32+32]
		var s int32
		for j, v := range blk[2:18] {
			s += int32(iq4nlValues[v&15])*int32(q[j]) + int32(iq4nlValues[v>>4])*int32(q[j+16])
		}
		sum += float32(s) * (f16(blk) * dy)
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.IQ4_NL, BlockSize: iq4nlElems, BlockBytes: iq4nlBytes, Scales: []int{0},
		Dequantize: dequantIQ4NL, Quantize: quantIQ4NLRef, QuantizeWeighted: quantIQ4NL,
		Act: ActQ8_0, Dot: dotIQ4NL,
		grid: iq4NLGrid,
	})
}
