package ggml

import (
	"encoding/binary"
	"math"

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

// groupMaxEpsIQ1M is ggml's GROUP_MAX_EPS_IQ1_M: a block of 16 whose
// largest magnitude is below it is coded as zeros.
const groupMaxEpsIQ1M = 1e-7

// iq1mSignMasks are the qh sign bits of a block of 16 by shift choice k:
// bit 1 of k is the first run's shift sign, bit 0 the second's.
var iq1mSignMasks = [4]byte{0x00, 0x80, 0x08, 0x88}

// iq1mValues returns the values of run r (0 or 1) of a block of 16 whose
// shift choice is k.
func iq1mValues(k, r int) *[3]float32 {
	neg := k >= 2
	if r == 1 {
		neg = k%2 == 1
	}
	if neg {
		return &iq1Minus
	}
	return &iq1Plus
}

// quantIQ1MRow is quantize_row_iq1_m_impl for one row (qw nil or the row's
// importance): per block of 16 the exhaustive three-level split for each
// of the four shift pairs, runs moved onto the grid, the scale refitted;
// then the 3-bit block scales and a super-block scale refitted over the
// whole super-block.
func quantIQ1MRow(src []float32, dst []byte, qw []float32) {
	x := iq1Index()
	var (
		w      [16]float32
		l      [16]int8
		idx    [16]int
		scales [16]float32
		shifts [16]int
		index  [2]int
	)
	for ibl := 0; ibl < len(src)/iq1mElems; ibl++ {
		xbl := src[ibl*iq1mElems : (ibl+1)*iq1mElems]
		b := dst[ibl*iq1mBytes : (ibl+1)*iq1mBytes]
		clear(b)
		sigma2 := iq1Sigma2(xbl)
		var rowQW []float32
		weights := func(ib int) {
			if qw != nil {
				rowQW = qw[iq1mElems*ibl+16*ib:]
			}
			iq1Weights(xbl[16*ib:16*ib+16], rowQW, sigma2, w[:])
		}
		var maxScale float32
		for ib := 0; ib < 16; ib++ {
			xb := xbl[16*ib : 16*ib+16]
			weights(ib)
			mx := maxAbs(xb)
			if mx < groupMaxEpsIQ1M {
				scales[ib], shifts[ib] = 0, 0
				continue
			}
			iq1SortedOrder(xb, idx[:])
			best, scale := float32(-math.MaxFloat32), mx
			besti1, besti2, bestK := -1, -1, -1
			for i1 := 0; i1 <= 16; i1++ {
				for i2 := i1; i2 <= 16; i2++ {
					var sumqx, sumq2 [4]float32
					for j, i := range idx {
						lv := 2
						if j < i1 {
							lv = 0
						} else if j < i2 {
							lv = 1
						}
						for k := 0; k < 4; k++ {
							q := iq1mValues(k, i/8)[lv]
							wq := float32(w[i] * q)
							sumqx[k] += float32(wq * xb[i])
							sumq2[k] += float32(wq * q)
						}
					}
					for k := 0; k < 4; k++ {
						if sumq2[k] > 0 && float32(sumqx[k]*sumqx[k]) > float32(best*sumq2[k]) {
							scale = sumqx[k] / sumq2[k]
							best = scale * sumqx[k]
							besti1, besti2, bestK = i1, i2, k
						}
					}
				}
			}
			if besti1 < 0 || besti2 < 0 || bestK < 0 {
				scales[ib], shifts[ib] = 0, 0
				continue
			}
			for j, i := range idx {
				switch {
				case j < besti1:
					l[i] = 0
				case j < besti2:
					l[i] = 1
				default:
					l[i] = 2
				}
			}
			if scale < 0 {
				for j := range l {
					l[j] = 2 - l[j]
				}
				scale, bestK = -scale, 3-bestK
			}
			onGrid := true
			for k := 0; k < 2; k++ {
				u := iq2Code(l[8*k:])
				g := int(x.onGrid[u])
				if g < 0 {
					onGrid = false
					g = iq1BestNeighbour(x, u, xb[8*k:8*k+8], w[8*k:8*k+8], scale, iq1mValues(bestK, k), l[8*k:])
				}
				index[k] = g
			}
			if !onGrid {
				var sumqx, sumq2 float32
				for k := 0; k < 2; k++ {
					xx := iq1mValues(bestK, k)
					for j, p := range x.point[index[k]] {
						q := xx[(p-1)/2]
						wq := float32(w[8*k+j] * q)
						sumqx += float32(wq * xb[8*k+j])
						sumq2 += float32(wq * q)
					}
				}
				if sumqx > 0 && sumq2 > 0 {
					scale = sumqx / sumq2
				}
			}
			b[2*ib] = byte(index[0])
			b[2*ib+1] = byte(index[1])
			b[32+ib] = byte(index[0]>>8) | byte(index[1]>>8)<<4
			scales[ib], shifts[ib] = scale, bestK
			maxScale = max(maxScale, scale)
		}
		if maxScale == 0 {
			continue
		}
		var sc [4]uint16
		d := maxScale / 15
		id := 1 / d
		var sumqx, sumq2 float32
		for ib := 0; ib < 16; ib++ {
			lv := clampInt32(nearestInt(0.5*float32(float32(id*scales[ib])-1)), 0, 7)
			sc[ib/4] |= uint16(lv) << (3 * uint(ib%4))
			b[32+ib] |= iq1mSignMasks[shifts[ib]]
			xb := xbl[16*ib : 16*ib+16]
			weights(ib)
			ls := float32(2*lv + 1)
			for k := 0; k < 2; k++ {
				xx := iq1mValues(shifts[ib], k)
				g := int(b[2*ib+k]) | int(b[32+ib])<<(8-4*uint(k))&0x700
				for j, p := range x.point[g] {
					q := float32(xx[(p-1)/2] * ls)
					wq := float32(w[8*k+j] * q)
					sumqx += float32(wq * xb[8*k+j])
					sumq2 += float32(wq * q)
				}
			}
		}
		if sumq2 > 0 {
			d = sumqx / sumq2
		}
		for k, v := range sc {
			binary.LittleEndian.PutUint16(b[48+2*k:], v)
		}
		setIQ1MScale(b, tensor.F32ToF16(float32(d*1.1125)))
	}
}

// quantIQ1M is the descriptor's Quantize, as ggml without importance
// (weights x²). ggml quantizes IQ1_M without importance, and llama-quantize
// allows it for the token embedding and the output (package compress
// applies that rule), so the type is not NeedsImportance.
func quantIQ1M(src []float32, dst []byte) {
	quantIQ1MRow(src, dst, nil)
}

func init() {
	register(&Type{
		DType: tensor.IQ1_M, BlockSize: iq1mElems, BlockBytes: iq1mBytes, SetScale: setIQ1MScale,
		Dequantize: dequantIQ1M, Quantize: quantIQ1M, QuantizeWeighted: quantIQ1MRow,
		Act: ActQ8_K, Dot: dotIQ1M,
	})
}
