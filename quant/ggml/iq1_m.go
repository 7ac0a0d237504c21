package ggml

import (
	"encoding/binary"

	"github.com/terse-llm/terse/tensor"
)

// IQ1_M is ggml's 1.75-bit lattice type: super-blocks of 256 elements in
// 56 bytes, eight groups of 32 (two halves of 16 with their own 3-bit
// scale), each run of 8 elements one point of iq1sGrid shifted by ±1/8
// with its own shift sign. It has no whole binary16 field: the super-block
// scale is spread over the top nibbles of the scales.
//
//	offset size  field
//	0      32    qs      low 8 bits of each run's grid index (4 per group)
//	32     16    qh      two bytes per group, one per pair of runs: bits
//	                     0..2 (4..6) are bits 8..10 of the even (odd) run's
//	                     index, bit 3 (7) the sign of its shift
//	48     8     scales  four little-endian uint16 s0..s3: bits 6h..6h+2
//	                     (6h+3..6h+5) of s_k are the scale of the first
//	                     (second) half of group 2k+h; bits 12..15 of s_k
//	                     are bits 4k..4k+3 of the binary16 scale d
//
// Half scale dl = d * float32(2*ls + 1); element j of a run is
// dl * (grid value j + delta), delta = -1/8 when the run's sign bit is
// set, else 1/8.
const (
	iq1mElems = 256
	iq1mBytes = 56
)

// iq1mScales returns the four uint16 scale words of block b and its
// super-block scale.
func iq1mScales(b []byte) (sc [4]uint16, d float32) {
	for k := range sc {
		sc[k] = binary.LittleEndian.Uint16(b[48+2*k:])
	}
	h := sc[0]>>12 | sc[1]>>8&0x00f0 | sc[2]>>4&0x0f00 | sc[3]&0xf000
	return sc, tensor.F16ToF32(h)
}

// setIQ1MScale writes h as block b's super-block scale (Type.SetScale).
func setIQ1MScale(b []byte, h uint16) {
	for k := 0; k < 4; k++ {
		o := 49 + 2*k // the high byte of scale word k
		b[o] = b[o]&0x0f | byte(h>>(4*uint(k))&0xf)<<4
	}
}

// iq1mRun returns run l's grid index and shift sign (1 or -1) in group g
// of block b.
func iq1mRun(b []byte, g, l int) (idx int, neg bool) {
	qh := int(b[32+2*g+l/2])
	if l%2 == 0 {
		return int(b[4*g+l]) | qh<<8&0x700, qh&0x08 != 0
	}
	return int(b[4*g+l]) | qh<<4&0x700, qh&0x80 != 0
}

// iq1mHalfScale returns 2·ls+1 for half h of group g.
func iq1mHalfScale(sc *[4]uint16, g, h int) int32 {
	return 2*int32(sc[g/2]>>(6*uint(g%2)+3*uint(h))&7) + 1
}

func dequantIQ1M(src []byte, dst []float32) {
	for i := 0; i < len(dst)/iq1mElems; i++ {
		b := src[i*iq1mBytes : (i+1)*iq1mBytes]
		y := dst[i*iq1mElems : (i+1)*iq1mElems]
		sc, d := iq1mScales(b)
		for g := 0; g < 8; g++ {
			dl := [2]float32{d * float32(iq1mHalfScale(&sc, g, 0)), d * float32(iq1mHalfScale(&sc, g, 1))}
			for l := 0; l < 4; l++ {
				idx, neg := iq1mRun(b, g, l)
				delta := float32(iq1Delta)
				if neg {
					delta = -iq1Delta
				}
				yl := y[32*g+8*l : 32*g+8*l+8]
				for j := range yl {
					yl[j] = dl[l/2] * (float32(iq1Value(idx, j)) + delta)
				}
			}
		}
	}
}

// dotIQ1M is the reference dot product (Type.Dot), as
// ggml_vec_dot_iq1_m_q8_K.
func dotIQ1M(w []byte, a *ActRow) float32 {
	var sum float32
	for bi, dy := range a.D {
		b := w[bi*iq1mBytes : (bi+1)*iq1mBytes]
		q := a.Q[bi*iq1mElems : (bi+1)*iq1mElems]
		sc, d := iq1mScales(b)
		var sumi1, sumi2 int32
		for g := 0; g < 8; g++ {
			var sum1, sum2 [2]int32
			for l := 0; l < 4; l++ {
				idx, neg := iq1mRun(b, g, l)
				var lsum1, lsum2 int32
				for j, x := range q[32*g+8*l : 32*g+8*l+8] {
					lsum1 += int32(x) * iq1Value(idx, j)
					lsum2 += int32(x)
				}
				if neg {
					lsum2 = -lsum2
				}
				sum1[l/2] += lsum1
				sum2[l/2] += lsum2
			}
			ls1, ls2 := iq1mHalfScale(&sc, g, 0), iq1mHalfScale(&sc, g, 1)
			sumi1 += sum1[0]*ls1 + sum1[1]*ls2
			sumi2 += sum2[0]*ls1 + sum2[1]*ls2
		}
		dd := d * dy
		sum += float32(dd * (float32(sumi1) + float32(iq1Delta*float32(sumi2))))
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.IQ1_M, BlockSize: iq1mElems, BlockBytes: iq1mBytes, SetScale: setIQ1MScale,
		Dequantize: dequantIQ1M, NeedsImportance: true,
		Act: ActQ8_K, Dot: dotIQ1M,
	})
}
