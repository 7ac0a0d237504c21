package ggml

import "github.com/terse-llm/terse/tensor"

// Q5_K is ggml's 5-bit k-quant: super-blocks of 256 elements in 176 bytes,
// with the scales and mins of Q4_K and a fifth bit per element.
//
//	offset size  field
//	0      2     d       binary16 super-block scale for the scales
//	2      2     dmin    binary16 super-block scale for the mins
//	4      12    scales  packed 6-bit scales and mins (see scaleMinK4)
//	16     32    qh      fifth bits
//	48     128   qs      low 4 bits
//
// The low bits are laid out as in Q4_K; the fifth bit of the element from
// byte l of chunk c is bit 2c (low nibble) or 2c+1 (high nibble) of qh[l]
// and adds 16.
//
// For sub-block s: d1 = d*float32(sc), m1 = dmin*float32(m), each rounded to
// float32; element = float32(d1*float32(q)) - m1.
const q5KBytes = 176

func dequantQ5K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q5KBytes : (i+1)*q5KBytes]
		y := dst[i*qkK : (i+1)*qkK]
		d := f16(b)
		dmin := f16(b[2:])
		scales := b[4:16]
		qh := b[16:48]
		for c := 0; c < 4; c++ {
			sc, m := scaleMinK4(2*c, scales)
			d1, m1 := d*float32(sc), dmin*float32(m)
			sc, m = scaleMinK4(2*c+1, scales)
			d2, m2 := d*float32(sc), dmin*float32(m)
			s1 := 2 * uint(c) // qh bit of the low nibbles; s1+1 of the high
			q := b[48+32*c : 48+32*c+32]
			lo := y[64*c : 64*c+32]
			hi := y[64*c+32 : 64*c+64]
			for l := range q {
				v1 := q[l]&0x0f | (qh[l]>>s1&1)<<4
				v2 := q[l]>>4 | (qh[l]>>(s1+1)&1)<<4
				lo[l] = float32(d1*float32(v1)) - m1
				hi[l] = float32(d2*float32(v2)) - m2
			}
		}
	}
}

// quantQ5KRef is quantize_row_q5_K_ref.
func quantQ5KRef(src []float32, dst []byte) { quantQ45KRef(src, dst, 31) }

// quantQ5KImpl is quantize_row_q5_K_impl for one row.
func quantQ5KImpl(row []float32, dst []byte, qw []float32) { quantQ45KImpl(row, dst, qw, 31) }

// q5KGrid maps Q5_K blocks to BlockGrids.
var q5KGrid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		resetK45Grid(g, blk, 32)
	},
	codes: func(blk []byte, codes []int) {
		getNibblesK(blk[48:176], codes)
		qh := blk[16:48]
		for i := range codes {
			codes[i] |= int(qh[i%32]>>uint(i/32)&1) << 4
		}
	},
	encode: func(codes []int, blk []byte) {
		putNibblesK(codes, blk[48:176])
		qh := blk[16:48]
		clear(qh)
		for i, c := range codes {
			qh[i%32] |= byte(c>>4&1) << uint(i/32)
		}
	},
}

// dotQ5K is the reference dot product (Type.Dot).
func dotQ5K(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*176 : b*176+176]
		q := a.Q[b*256 : b*256+256]
		sc, m := scaleMinK4All(blk[4:16])
		qh := blk[16:48]
		var sumi int32
		for c := 0; c < 4; c++ {
			qs := blk[48+32*c : 80+32*c]
			var s1, s2 int32
			for l, v := range qs {
				lo := int32(v&15) | int32(qh[l]>>uint(2*c)&1)<<4
				hi := int32(v>>4) | int32(qh[l]>>uint(2*c+1)&1)<<4
				s1 += lo * int32(q[64*c+l])
				s2 += hi * int32(q[64*c+32+l])
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
		DType: tensor.Q5_K, BlockSize: qkK, BlockBytes: q5KBytes, Scales: []int{0, 2},
		Dequantize: dequantQ5K, Quantize: quantQ5KRef, QuantizeWeighted: quantQ5KImpl,
		Act: ActQ8_K, Dot: dotQ5K,
		grid: q5KGrid,
	})
}
