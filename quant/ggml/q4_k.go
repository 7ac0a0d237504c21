package ggml

import "github.com/terse-llm/terse/tensor"

// Q4_K is ggml's 4-bit k-quant: super-blocks of 256 elements in 144 bytes,
// split into 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit
// minimum packed into 12 bytes (see scaleMinK4; Q5_K shares the scheme).
//
//	offset size  field
//	0      2     d       binary16 super-block scale for the scales
//	2      2     dmin    binary16 super-block scale for the mins
//	4      12    scales  packed 6-bit scales and mins
//	16     128   qs      4-bit quants
//
// The elements come in four chunks of 64, chunk c reading qs bytes
// 32c..32c+31: their low nibbles are sub-block 2c, their high nibbles
// sub-block 2c+1.
//
// For sub-block s: d1 = d*float32(sc), m1 = dmin*float32(m), each rounded to
// float32; element = float32(d1*float32(q)) - m1.
const q4KBytes = 144

func dequantQ4K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q4KBytes : (i+1)*q4KBytes]
		y := dst[i*qkK : (i+1)*qkK]
		d := f16(b)
		dmin := f16(b[2:])
		scales := b[4:16]
		for c := 0; c < 4; c++ {
			sc, m := scaleMinK4(2*c, scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = scaleMinK4(2*c+1, scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			q := b[16+32*c : 16+32*c+32]
			lo := y[64*c : 64*c+32]
			hi := y[64*c+32 : 64*c+64]
			for l := range q {
				lo[l] = float32(d1*float32(q[l]&0x0f)) - m1
				hi[l] = float32(d2*float32(q[l]>>4)) - m2
			}
		}
	}
}

// quantQ4KRef is quantize_row_q4_K_ref.
func quantQ4KRef(src []float32, dst []byte) { quantQ45KRef(src, dst, 15) }

// quantQ4KImpl is quantize_row_q4_K_impl for one row.
func quantQ4KImpl(row []float32, dst []byte, qw []float32) { quantQ45KImpl(row, dst, qw, 15) }

// q4KGrid maps Q4_K blocks to BlockGrids.
var q4KGrid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		resetK45Grid(g, blk, 16)
	},
	codes: func(blk []byte, codes []int) {
		getNibblesK(blk[16:144], codes)
	},
	encode: func(codes []int, blk []byte) {
		putNibblesK(codes, blk[16:144])
	},
}

// dotQ4K is the reference dot product (Type.Dot).
func dotQ4K(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*144 : b*144+144]
		q := a.Q[b*256 : b*256+256]
		sc, m := scaleMinK4All(blk[4:16])
		var sumi int32
		for c := 0; c < 4; c++ {
			qs := blk[16+32*c : 48+32*c]
			var s1, s2 int32
			for l, v := range qs {
				s1 += int32(v&15) * int32(q[64*c+l])
				s2 += int32(v>>4) * int32(q[64*c+32+l])
			}
			sumi += sc[2*c]*s1 + sc[2*c+1]*s2
		}
		summ := kMins(&m, a.BS[b*16:b*16+16])
		sum += dy*f16(blk)*float32(sumi) - dy*f16(blk[2:])*float32(summ)
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.Q4_K, BlockSize: qkK, BlockBytes: q4KBytes, Scales: []int{0, 2},
		Dequantize: dequantQ4K, Quantize: quantQ4KRef, QuantizeWeighted: quantQ4KImpl,
		Act: ActQ8_K, Dot: dotQ4K,
		grid: q4KGrid,
	})
}
