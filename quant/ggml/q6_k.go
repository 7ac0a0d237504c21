package ggml

import "github.com/terse-llm/terse/tensor"

// Q6_K is ggml's 6-bit k-quant: super-blocks of 256 elements in 210 bytes,
// split into 16 sub-blocks of 16, each with a signed 8-bit scale.
//
//	offset size  field
//	0      128   ql      low 4 bits
//	128    64    qh      high 2 bits
//	192    16    scales  int8 scales
//	208    2     d       binary16 super-block scale
//
// The elements come in two halves of 128; half h reads ql[64h:64h+64],
// qh[32h:32h+32] and scales[8h:8h+8]. For l = 0..31 within a half:
//
//	element l      low nibble of ql[l],    qh[l] bits 0-1
//	element l+32   low nibble of ql[l+32], qh[l] bits 2-3
//	element l+64   high nibble of ql[l],   qh[l] bits 4-5
//	element l+96   high nibble of ql[l+32], qh[l] bits 6-7
//
// giving q in 0..63. Element l+32k uses scale sc = scales[l/16 + 2k] of the
// half and is (d*float32(sc)) * float32(q-32), the first product rounded to
// float32 as in ggml.
const q6KBytes = 210

func dequantQ6K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q6KBytes : (i+1)*q6KBytes]
		y := dst[i*qkK : (i+1)*qkK]
		d := f16(b[208:])
		for h := 0; h < 2; h++ {
			ql := b[64*h : 64*h+64]
			qh := b[128+32*h : 128+32*h+32]
			sc := b[192+8*h : 192+8*h+8]
			yh := y[128*h : 128*h+128]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int32(ql[l]&0x0f|(qh[l]&3)<<4) - 32
				q2 := int32(ql[l+32]&0x0f|(qh[l]>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				yh[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
				yh[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
				yh[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
				yh[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
			}
		}
	}
}

// quantQ6K is quantize_row_q6_K_ref (qw nil) and quantize_row_q6_K_impl
// (qw one row of weights).
func quantQ6K(src []float32, dst []byte, qwRow []float32) {
	var L [qkK]int8
	var scales [16]float32
	for i := 0; i < len(src)/qkK; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*q6KBytes : (i+1)*q6KBytes]
		var maxScale, maxAbsScale float32
		for ib := 0; ib < 16; ib++ {
			var qw []float32
			if qwRow != nil {
				qw = qwRow[qkK*i+16*ib:]
			}
			scale := makeQxQuants(16, 32, x[16*ib:], L[16*ib:], 1, qw)
			scales[ib] = scale
			if a := abs32(scale); a > maxAbsScale {
				maxAbsScale = a
				maxScale = scale
			}
		}
		if maxAbsScale < groupMaxEps {
			clear(b)
			continue
		}
		iscale := -128 / maxScale
		putF16(b[208:], 1/iscale)
		sc := b[192:208]
		for ib := 0; ib < 16; ib++ {
			sc[ib] = byte(min(127, nearestInt(iscale*scales[ib])))
		}
		d0 := f16(b[208:])
		for j := 0; j < 16; j++ {
			d := d0 * float32(int8(sc[j]))
			if d == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := clampInt32(nearestInt(x[16*j+ii]/d), -32, 31)
				L[16*j+ii] = int8(l + 32)
			}
		}
		for h := 0; h < 2; h++ {
			ql := b[64*h : 64*h+64]
			qh := b[128+32*h : 128+32*h+32]
			Lh := L[128*h : 128*h+128]
			for l := 0; l < 32; l++ {
				q1 := uint8(Lh[l]) & 0x0f
				q2 := uint8(Lh[l+32]) & 0x0f
				q3 := uint8(Lh[l+64]) & 0x0f
				q4 := uint8(Lh[l+96]) & 0x0f
				ql[l] = q1 | q3<<4
				ql[l+32] = q2 | q4<<4
				qh[l] = uint8(Lh[l])>>4 | (uint8(Lh[l+32])>>4)<<2 | (uint8(Lh[l+64])>>4)<<4 | (uint8(Lh[l+96])>>4)<<6
			}
		}
	}
}

// quantQ6KRef is quantize_row_q6_K_ref.
func quantQ6KRef(src []float32, dst []byte) { quantQ6K(src, dst, nil) }

// q6KLoc locates element i of a Q6_K block: its low nibble is at bit ls of
// byte lb (in ql), its high two bits at bit hs of byte hb (in qh).
func q6KLoc(i int) (lb int, ls uint, hb int, hs uint) {
	h, r := i/128, i%128
	k, l := r/32, r%32
	lb = 64*h + l + 32*(k&1)
	ls = 4 * uint(k/2)
	hb = 128 + 32*h + l
	hs = 2 * uint(k)
	return
}

// q6KGrid maps Q6_K blocks to BlockGrids.
var q6KGrid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels, g.off = gridSym, 4, 64, 32
		d := f16(blk[208:])
		for j := 0; j < 16; j++ {
			g.s[j] = d * float32(int8(blk[192+j]))
		}
	},
	codes: func(blk []byte, codes []int) {
		for i := range codes {
			lb, ls, hb, hs := q6KLoc(i)
			codes[i] = int(blk[lb]>>ls&0x0f) | int(blk[hb]>>hs&3)<<4
		}
	},
	encode: func(codes []int, blk []byte) {
		clear(blk[0:192])
		for i, c := range codes {
			lb, ls, hb, hs := q6KLoc(i)
			blk[lb] |= byte(c&0x0f) << ls
			blk[hb] |= byte(c>>4&3) << hs
		}
	},
}

// dotQ6K is the reference dot product (Type.Dot).
func dotQ6K(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*210 : b*210+210]
		q := a.Q[b*256 : b*256+256]
		var sumi int32
		for h := 0; h < 2; h++ {
			ql := blk[64*h : 64*h+64]
			qh := blk[128+32*h : 160+32*h]
			sc := blk[192+8*h : 200+8*h]
			qq := q[128*h : 128*h+128]
			var is [8]int32
			for l := 0; l < 32; l++ {
				k := l / 16
				q1 := int32(ql[l]&15|(qh[l]&3)<<4) - 32
				q2 := int32(ql[l+32]&15|(qh[l]>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				is[k] += q1 * int32(qq[l])
				is[k+2] += q2 * int32(qq[l+32])
				is[k+4] += q3 * int32(qq[l+64])
				is[k+6] += q4 * int32(qq[l+96])
			}
			for k, v := range is {
				sumi += int32(int8(sc[k])) * v
			}
		}
		sum += dy * f16(blk[208:]) * float32(sumi)
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.Q6_K, BlockSize: qkK, BlockBytes: q6KBytes, Scales: []int{208},
		Dequantize: dequantQ6K, Quantize: quantQ6KRef, QuantizeWeighted: quantQ6K,
		Act: ActQ8_K, Dot: dotQ6K,
		grid: q6KGrid,
	})
}
