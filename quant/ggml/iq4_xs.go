package ggml

import (
	"encoding/binary"

	"github.com/terse-llm/terse/tensor"
)

// IQ4_XS is ggml's non-linear 4-bit type with 6-bit group scales:
// super-blocks of 256 elements (eight groups of 32) in 136 bytes, each
// nibble indexing iq4nlValues, packed as in IQ4_NL within each group.
//
//	offset size  field
//	0      2     d        binary16 super-block scale
//	2      2     scales_h little-endian uint16: bits 2g..2g+1 are the high
//	                      two bits of group g's 6-bit scale
//	4      4     scales_l nibble g (byte g/2, low nibble for even g) holds
//	                      the low four bits of group g's scale
//	8      128   qs       16 bytes of nibbles per group
//
// Group g's scale is dl = d * float32(ls-32), ls the 6-bit value; element =
// dl * float32(iq4nlValues[q]).
const (
	iq4xsElems  = 256
	iq4xsBytes  = 136
	iq4xsGroups = 8
)

func dequantIQ4XS(src []byte, dst []float32) {
	for i := 0; i < len(dst)/iq4xsElems; i++ {
		b := src[i*iq4xsBytes : (i+1)*iq4xsBytes]
		y := dst[i*iq4xsElems : (i+1)*iq4xsElems]
		d := f16(b)
		sh := uint16(b[2]) | uint16(b[3])<<8
		sl := b[4:8]
		for g := 0; g < iq4xsGroups; g++ {
			ls := int32(sl[g/2]>>(4*uint(g%2)))&0x0f | int32(sh>>(2*uint(g))&3)<<4
			dl := d * float32(ls-32)
			qs := b[8+16*g : 8+16*g+16]
			yg := y[32*g : 32*g+32]
			for j := 0; j < 16; j++ {
				yg[j] = dl * float32(iq4nlValues[qs[j]&0x0f])
				yg[j+16] = dl * float32(iq4nlValues[qs[j]>>4])
			}
		}
	}
}

// quantIQ4XS is quantize_iq4_xs: qwRow is nil or one row of weights.
func quantIQ4XS(src []float32, dst []byte, qwRow []float32) {
	var L [iq4xsElems]uint8
	var w [32]float32
	var scales [iq4xsGroups]float32
	for ibl := 0; ibl < len(src)/iq4xsElems; ibl++ {
		x := src[ibl*iq4xsElems : (ibl+1)*iq4xsElems]
		b := dst[ibl*iq4xsBytes : (ibl+1)*iq4xsBytes]
		sigma2 := iq4Sigma2(x)
		var maxScale, amaxScale float32
		for ib := 0; ib < iq4xsGroups; ib++ {
			xb := x[32*ib : 32*ib+32]
			var qw []float32
			if qwRow != nil {
				qw = qwRow[iq4xsElems*ibl+32*ib:]
			}
			iq4Weights(w[:], xb, qw, sigma2)
			scales[ib] = iq4Block(xb, w[:], L[32*ib:])
			if a := abs32(scales[ib]); a > amaxScale {
				amaxScale = a
				maxScale = scales[ib]
			}
		}
		d := -maxScale / 32
		putF16(b, d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		var sh uint16
		sl := b[4:8]
		for ib := 0; ib < iq4xsGroups; ib++ {
			l := clampInt32(nearestInt(id*scales[ib]), -32, 31)
			dl := d * float32(l)
			var idl float32
			if dl != 0 {
				idl = 1 / dl
			}
			for j, v := range x[32*ib : 32*ib+32] {
				L[32*ib+j] = uint8(bestIndexInt8(iq4nlValues[:], idl*v))
			}
			l += 32
			lo, hi := uint8(l&0x0f), uint16(l>>4)
			if ib%2 == 0 {
				sl[ib/2] = lo
			} else {
				sl[ib/2] |= lo << 4
			}
			sh |= hi << (2 * uint(ib%8))
		}
		binary.LittleEndian.PutUint16(b[2:], sh)
		packIQ4(L[:], b[8:136])
	}
}

// quantIQ4XSRef is quantIQ4XS without importance: llama-quantize runs the
// same search (see iq4.go).
func quantIQ4XSRef(src []float32, dst []byte) { quantIQ4XS(src, dst, nil) }

// iq4XSGrid maps IQ4_XS blocks to BlockGrids.
var iq4XSGrid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels = gridTable, 5, 16
		g.table = &iq4nlValues
		d := f16(blk)
		sh := uint16(blk[2]) | uint16(blk[3])<<8
		for j := 0; j < 8; j++ {
			ls := int32(blk[4+j/2]>>(4*uint(j%2)))&0x0f | int32(sh>>(2*uint(j))&3)<<4
			g.s[j] = d * float32(ls-32)
		}
	},
	codes: func(blk []byte, codes []int) {
		for j := 0; j < 8; j++ {
			getNibbles32(blk[8+16*j:24+16*j], codes[32*j:32*j+32])
		}
	},
	encode: func(codes []int, blk []byte) {
		for j := 0; j < 8; j++ {
			putNibbles32(codes[32*j:32*j+32], blk[8+16*j:24+16*j])
		}
	},
}

// dotIQ4XS is the reference dot product (Type.Dot).
func dotIQ4XS(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*136 : b*136+136]
		q := a.Q[b*256 : b*256+256]
		sh := uint16(blk[2]) | uint16(blk[3])<<8
		var sumi int32
		for g := 0; g < 8; g++ {
			ls := int32(blk[4+g/2]>>(4*uint(g%2)))&15 | int32(sh>>(2*uint(g))&3)<<4
			qs := blk[8+16*g : 24+16*g]
			qg := q[32*g : 32*g+32]
			var s int32
			for j, v := range qs {
				s += int32(iq4nlValues[v&15])*int32(qg[j]) + int32(iq4nlValues[v>>4])*int32(qg[j+16])
			}
			sumi += (ls - 32) * s
		}
		sum += dy * f16(blk) * float32(sumi)
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.IQ4_XS, BlockSize: iq4xsElems, BlockBytes: iq4xsBytes, Scales: []int{0},
		Dequantize: dequantIQ4XS, Quantize: quantIQ4XSRef, QuantizeWeighted: quantIQ4XS,
		Act: ActQ8_K, Dot: dotIQ4XS,
		grid: iq4XSGrid,
	})
}
