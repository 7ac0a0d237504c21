package ggml

import "github.com/terse-llm/terse/tensor"

// Q3_K is ggml's 3-bit k-quant: super-blocks of 256 elements in 110 bytes,
// split into 16 sub-blocks of 16 elements, each with a signed 6-bit scale.
//
//	offset size  field
//	0      32    hmask   high (third) bits
//	32     64    qs      low 2 bits
//	96     12    scales  sixteen 6-bit scales, packed
//	108    2     d       binary16 super-block scale
//
// Scale s (0..15) is (low4 | high2<<4) - 32, where low4 is the low nibble of
// scales[s] for s < 8 and the high nibble of scales[s-8] otherwise, and
// high2 is bits 2*(s/4)..2*(s/4)+1 of scales[8+s%4].
//
// The low bits are laid out as in Q2_K: two halves of 128 elements, each
// reading 32 bytes of qs; within a half, the 2-bit field at shift 2k of
// bytes 0..15 and then of bytes 16..31 form consecutive runs of 16. The
// third bit of the element read from qs byte l (l = 0..31 within the half)
// at run pair r (r = 0..7 counting across both halves) is bit r of hmask[l].
// A clear bit means the element's value is q-4, a set bit q.
//
// For sub-block s: dl = d * float32(scale), element = dl * float32(value).
const q3KBytes = 110

func dequantQ3K(src []byte, dst []float32) {
	var sc [16]int32
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q3KBytes : (i+1)*q3KBytes]
		y := dst[i*qkK : (i+1)*qkK]
		hmask := b[0:32]
		packed := b[96:108]
		d := f16(b[108:])
		for s := 0; s < 8; s++ {
			hi := packed[8+s%4]
			sc[s] = int32(packed[s]&0x0f|(hi>>(2*uint(s/4))&3)<<4) - 32
			sc[s+8] = int32(packed[s]>>4|(hi>>(2*uint(s/4+2))&3)<<4) - 32
		}
		s := 0
		o := 0
		hbit := uint(0) // hmask bit of the current run pair
		for half := 0; half < 2; half++ {
			q := b[32+32*half : 32+32*half+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for part := 0; part < 2; part++ {
					dl := d * float32(sc[s])
					s++
					qq := q[16*part : 16*part+16]
					hm := hmask[16*part : 16*part+16]
					yy := y[o : o+16]
					for l := range yy {
						// q-4 when the high bit is clear, q when it is set
						v := int32(qq[l]>>shift&3|(hm[l]>>hbit&1)<<2) - 4
						yy[l] = dl * float32(v)
					}
					o += 16
				}
				hbit++
			}
		}
	}
}

// q3KScale reads back the signed 6-bit scale of sub-block j from a Q3_K
// block's 12-byte scales field.
func q3KScale(j int, sc []byte) int8 {
	var s int8
	if j < 8 {
		s = int8(sc[j] & 0x0f)
	} else {
		s = int8(sc[j-8] >> 4)
	}
	return (s | int8((sc[8+j%4]>>(2*uint(j/4)))&3)<<4) - 32
}

// finishQ3K packs a Q3_K block whose scales field and d are written: it
// rounds every element again with the stored scales and writes hmask and
// qs. L holds the levels (offset by 4) of sub-blocks whose scale is zero.
func finishQ3K(x []float32, b []byte, L []int8) {
	dAll := f16(b[108:])
	for j := 0; j < 16; j++ {
		d := dAll * float32(q3KScale(j, b[96:108]))
		if d == 0 {
			continue
		}
		for ii := 0; ii < 16; ii++ {
			l := clampInt32(nearestInt(x[16*j+ii]/d), -4, 3)
			L[16*j+ii] = int8(l + 4)
		}
	}
	hmask := b[0:32]
	clear(hmask)
	m := 0
	hm := uint8(1)
	var Lu [qkK]uint8
	for j := 0; j < qkK; j++ {
		if L[j] > 3 {
			hmask[m] |= hm
			L[j] -= 4
		}
		Lu[j] = uint8(L[j])
		m++
		if m == qkK/8 {
			m = 0
			hm <<= 1
		}
	}
	packQ2Bits(Lu[:], b[32:96])
}

// packQ3KScale stores the 6-bit value l (already offset by 32) of
// sub-block j into a zeroed Q3_K scales field.
func packQ3KScale(j int, l uint8, sc []byte) {
	if j < 8 {
		sc[j] = l & 0x0f
	} else {
		sc[j-8] |= (l & 0x0f) << 4
	}
	l >>= 4
	sc[j%4+8] |= l << (2 * uint(j/4))
}

// quantQ3KRef is quantize_row_q3_K_ref.
func quantQ3KRef(src []float32, dst []byte) {
	var L [qkK]int8
	var scales [16]float32
	for i := 0; i < len(src)/qkK; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*q3KBytes : (i+1)*q3KBytes]
		var maxScale, amax float32
		for j := 0; j < 16; j++ {
			scales[j] = makeQ3Quants(16, 4, x[16*j:], L[16*j:], true)
			if s := abs32(scales[j]); s > amax {
				amax = s
				maxScale = scales[j]
			}
		}
		sc := b[96:108]
		clear(sc)
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := 0; j < 16; j++ {
				l := int8(nearestInt(iscale * scales[j]))
				l = int8(clampInt32(int32(l), -32, 31)) + 32
				packQ3KScale(j, uint8(l), sc)
			}
			putF16(b[108:], 1/iscale)
		} else {
			putF16(b[108:], 0)
		}
		finishQ3K(x, b, L[:])
	}
}

// quantQ3KImpl is quantize_row_q3_K_impl for one row.
func quantQ3KImpl(src []float32, dst []byte, qwRow []float32) {
	var L [qkK]int8
	var scales, weight, sw [16]float32
	var Ls [16]int8
	for i := 0; i < len(src)/qkK; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*q3KBytes : (i+1)*q3KBytes]
		var sumx2 float32
		for _, v := range x {
			sumx2 += float32(v * v)
		}
		sigma2 := 2 * sumx2 / qkK
		for j := 0; j < 16; j++ {
			qw := qwRow[qkK*i+16*j:]
			for l := 0; l < 16; l++ {
				xl := x[16*j+l]
				weight[l] = qw[l] * sqrt32(sigma2+float32(xl*xl))
			}
			var sumw float32
			for l := 0; l < 16; l++ {
				sumw += weight[l]
			}
			sw[j] = sumw
			scales[j] = makeQxQuants(16, 4, x[16*j:], L[16*j:], 1, weight[:])
		}
		sc := b[96:108]
		clear(sc)
		dBlock := makeQxQuants(16, 32, scales[:], Ls[:], 1, sw[:])
		for j := 0; j < 16; j++ {
			packQ3KScale(j, uint8(Ls[j]), sc)
		}
		putF16(b[108:], dBlock)
		finishQ3K(x, b, L[:])
	}
}

// q3KGrid maps Q3_K blocks to BlockGrids.
var q3KGrid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels, g.off = gridSym, 4, 8, 4
		d := f16(blk[108:])
		for j := 0; j < 16; j++ {
			g.s[j] = d * float32(q3KScale(j, blk[96:108]))
		}
	},
	codes: func(blk []byte, codes []int) {
		get2Bits(blk[32:96], codes)
		hmask := blk[0:32]
		for i := range codes {
			codes[i] |= int(hmask[i%32]>>uint(i/32)&1) << 2
		}
	},
	encode: func(codes []int, blk []byte) {
		put2Bits(codes, blk[32:96])
		hmask := blk[0:32]
		clear(hmask)
		for i, c := range codes {
			hmask[i%32] |= byte(c>>2&1) << uint(i/32)
		}
	},
}

// dotQ3K is the reference dot product (Type.Dot), as
// ggml_vec_dot_q3_K_q8_K: per block dy·d·Σ_s scale_s·Σ value·qy.
func dotQ3K(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*q3KBytes : (b+1)*q3KBytes]
		q := a.Q[b*qkK : (b+1)*qkK]
		hmask := blk[0:32]
		var sumi int32
		for s := 0; s < 16; s++ {
			half, shift, part := s/8, 2*uint(s%8/2), s%2
			hbit := uint(s / 2) // run pair
			qs := blk[32+32*half+16*part : 32+32*half+16*part+16]
			hm := hmask[16*part : 16*part+16]
			qy := q[16*s : 16*s+16]
			var t int32
			for l, v := range qs {
				t += (int32(v>>shift&3|(hm[l]>>hbit&1)<<2) - 4) * int32(qy[l])
			}
			sumi += int32(q3KScale(s, blk[96:108])) * t
		}
		sum += dy * f16(blk[108:]) * float32(sumi)
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.Q3_K, BlockSize: qkK, BlockBytes: q3KBytes, Scales: []int{108},
		Dequantize: dequantQ3K, Quantize: quantQ3KRef, QuantizeWeighted: quantQ3KImpl,
		Act: ActQ8_K, Dot: dotQ3K,
		grid: q3KGrid,
	})
}
