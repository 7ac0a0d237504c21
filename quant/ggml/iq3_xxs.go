package ggml

import (
	"encoding/binary"

	"github.com/terse-llm/terse/tensor"
)

// IQ3_XXS is ggml's 3.0625-bit lattice type: super-blocks of 256 elements
// in 98 bytes, eight groups of 32, each run of 8 elements two points of
// iq3xxsGrid (4 magnitudes each) with 7 sign bits.
//
//	offset size  field
//	0      2     d   binary16 super-block scale
//	2      64    qs  8 grid indices per group: bytes 2l and 2l+1 are the
//	                 first and second half of run l
//	66     32    ss  one little-endian uint32 per group: bits 7l..7l+6 are
//	                 run l's sign bits (iqSigns), bits 28..31 the scale ls
//
// Group scale db = d * (0.5 + ls) * 0.5; element j of a run is
// db * grid byte j * sign j.
const (
	iq3xxsElems = 256
	iq3xxsBytes = 98
)

func dequantIQ3XXS(src []byte, dst []float32) {
	for i := 0; i < len(dst)/iq3xxsElems; i++ {
		b := src[i*iq3xxsBytes : (i+1)*iq3xxsBytes]
		y := dst[i*iq3xxsElems : (i+1)*iq3xxsElems]
		d := f16(b)
		for g := 0; g < 8; g++ {
			qs := b[2+8*g : 10+8*g]
			ss := binary.LittleEndian.Uint32(b[66+4*g:])
			db := d * (0.5 + float32(ss>>28)) * 0.5
			for l := 0; l < 4; l++ {
				signs := iqSigns[ss>>(7*uint(l))&127]
				g1, g2 := uint64(iq3xxsGrid[qs[2*l]]), uint64(iq3xxsGrid[qs[2*l+1]])
				yl := y[32*g+8*l : 32*g+8*l+8]
				for j := 0; j < 4; j++ {
					yl[j] = db * float32(gridByte(g1, j)) * signOf(signs, j)
					yl[j+4] = db * float32(gridByte(g2, j)) * signOf(signs, j+4)
				}
			}
		}
	}
}

// groupMaxEpsIQ3 is ggml's GROUP_MAX_EPS_IQ3_XXS: a group whose largest
// magnitude is below it is coded as zeros.
const groupMaxEpsIQ3 = 1e-8

// iq3Signs prepares a group (whole runs of 8) for the IQ2 and IQ3 searches,
// as ggml does: xval
// gets the magnitudes and signs[k] the sign bits of run k (bit i: element
// i negative); where a run has an odd number of negatives (IQ3_XXS keeps
// only 7 sign bits, the eighth is parity) the element of least w·x² is
// taken with the wrong sign. With odd false (IQ3_S) all 8 bits are kept.
func iq3Signs(xb, w, xval []float32, signs []uint8, parity bool) {
	for k := 0; k < len(xb)/8; k++ {
		var s uint8
		nflip := 0
		for i := 0; i < 8; i++ {
			if v := xb[8*k+i]; v >= 0 {
				xval[8*k+i] = v
			} else {
				xval[8*k+i] = -v
				nflip++
				s |= 1 << uint(i)
			}
		}
		if parity && nflip%2 != 0 {
			imin := 0
			minv := float32(float32(w[8*k]*xb[8*k]) * xb[8*k])
			for i := 1; i < 8; i++ {
				if ax := float32(float32(w[8*k+i]*xb[8*k+i]) * xb[8*k+i]); ax < minv {
					minv, imin = ax, i
				}
			}
			xval[8*k+imin] = -xval[8*k+imin]
			s ^= 1 << uint(imin)
		}
		if parity {
			s &= 127
		}
		signs[k] = s
	}
}

// iq3Levels rounds the 4 values of a group scaled by id to 3-bit lattice
// levels (ggml: nearest_int(0.5·(id·x − 1)) clamped to 0..7).
func iq3Levels(xval []float32, id float32, l []int8) {
	for i := 0; i < 4; i++ {
		v := nearestInt(0.5 * float32(float32(id*xval[i])-1))
		l[i] = int8(clampInt32(v, 0, 7))
	}
}

// iq3Sums returns Σ w·x·q and Σ w·q² for q = 2l+1 over a group.
func iq3Sums(w, xval []float32, l []int8) (sumqx, sumq2 float32) {
	for i, wi := range w {
		q := float32(2*int32(l[i]) + 1)
		sumqx += float32(float32(wi*xval[i]) * q)
		sumq2 += float32(float32(wi*q) * q)
	}
	return sumqx, sumq2
}

// iq3Search is the per-group scale search of quantize_row_iq3_*_impl for
// a group of n values (32 for both types): it tries the scales
// max/(15 + 0.2·is) for is in −steps..steps, rounding each run of 4 to the
// grid (the nearest grid neighbour where the lattice point is off the
// grid), keeps the best least-squares scale, then, if a run was off the
// grid, re-rounds the off-grid runs (every run, with all) at that scale
// and refits. It returns the scale and leaves the grid indices in idx and the
// levels in l. The caller keeps l and on from group to group as ggml does
// (a group none of whose scales fits, all weights zero, keeps the last
// group's choice). The group's largest value must be at least
// groupMaxEpsIQ3.
func iq3Search(x *iq3Index, xval, w, waux []float32, l []int8, on *[8]bool, idx []int, steps int, all bool) float32 {
	n := len(xval)
	var laux [32]int8
	var onAux [8]bool
	maxv := maxOf(xval)
	const kMaxQ = 8
	var best float32
	scale := maxv / (2*kMaxQ - 1)
	for is := -steps; is <= steps; is++ {
		id := (2*kMaxQ - 1 + float32(float32(is)*0.2)) / maxv
		thisScale := 1 / id
		for k := 0; k < n/4; k++ {
			iq3Levels(xval[4*k:], id, laux[4*k:])
			u := iq3Code(laux[4*k:])
			onAux[k] = x.onGrid[u] >= 0
			if !onAux[k] {
				x.bestNeighbour(u, xval[4*k:4*k+4], waux[4*k:4*k+4], thisScale, laux[4*k:])
			}
		}
		sumqx, sumq2 := iq3Sums(w[:n], xval, laux[:n])
		if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
			scale = sumqx / sumq2
			best = scale * sumqx
			copy(l[:n], laux[:n])
			*on = onAux
		}
	}
	off := false
	for k := 0; k < n/4; k++ {
		off = off || !on[k]
	}
	if off && scale > 0 {
		id := 1 / scale
		for k := 0; k < n/4; k++ {
			if on[k] && !all {
				continue
			}
			var lk [4]int8
			iq3Levels(xval[4*k:], id, lk[:])
			u := iq3Code(lk[:])
			g := int(x.onGrid[u])
			if g < 0 {
				g = x.bestNeighbour(u, xval[4*k:4*k+4], waux[4*k:4*k+4], scale, l[4*k:])
			}
			for i, q := range x.point[g] {
				l[4*k+i] = (q - 1) / 2
			}
		}
		if sumqx, sumq2 := iq3Sums(w[:n], xval, l[:n]); sumq2 > 0 {
			scale = sumqx / sumq2
		}
	}
	for k := 0; k < n/4; k++ {
		// every run is on the grid now (ggml aborts otherwise)
		idx[k] = x.gridOf(l[4*k:])
	}
	return scale
}

// iq3Weights fills the search weights of a group of 32 (w) and their
// square roots (waux): qw·sqrt(sigma2 + x²) with importance qw, x² without.
func iq3Weights(xb, qw []float32, sigma2 float32, w, waux []float32) {
	for i, v := range xb {
		if qw != nil {
			w[i] = qw[i] * sqrt32(sigma2+float32(v*v))
		} else {
			w[i] = v * v
		}
		waux[i] = sqrt32(w[i])
	}
}

// quantIQ3XXSRow is quantize_row_iq3_xxs_impl for one row (qw nil or the
// row's importance).
func quantIQ3XXSRow(src []float32, dst []byte, qw []float32) {
	x := iq3XXSIndex()
	var scales [8]float32
	var w, waux, xval [32]float32
	var l [32]int8
	var on [8]bool
	var idx [8]int
	var signs [4]uint8
	for ibl := 0; ibl < len(src)/iq3xxsElems; ibl++ {
		xbl := src[ibl*iq3xxsElems : (ibl+1)*iq3xxsElems]
		b := dst[ibl*iq3xxsBytes : (ibl+1)*iq3xxsBytes]
		clear(b)
		var sumx2 float32
		for _, v := range xbl {
			sumx2 += float32(v * v)
		}
		sigma2 := 2 * sumx2 / iq3xxsElems
		var maxScale float32
		for ib := 0; ib < 8; ib++ {
			xb := xbl[32*ib : 32*ib+32]
			var qwb []float32
			if qw != nil {
				qwb = qw[iq3xxsElems*ibl+32*ib:]
			}
			iq3Weights(xb, qwb, sigma2, w[:], waux[:])
			iq3Signs(xb, w[:], xval[:], signs[:], true)
			if maxOf(xval[:]) < groupMaxEpsIQ3 {
				scales[ib] = 0
				clear(l[:])
				continue
			}
			scale := iq3Search(x, xval[:], w[:], waux[:], l[:], &on, idx[:], 15, false)
			if scale < 0 {
				scale = -scale
				for k := range signs {
					signs[k] = ^signs[k] & 127
				}
			}
			for k := 0; k < 8; k++ {
				b[2+8*ib+k] = byte(idx[k])
			}
			ss := uint32(signs[0]) | uint32(signs[1])<<7 | uint32(signs[2])<<14 | uint32(signs[3])<<21
			binary.LittleEndian.PutUint32(b[66+4*ib:], ss)
			scales[ib] = scale
			maxScale = max(maxScale, scale)
		}
		if maxScale == 0 {
			clear(b)
			continue
		}
		d := maxScale / 31
		putF16(b, float32(d*1.0125))
		id := 1 / d
		for ib := 0; ib < 8; ib++ {
			l := clampInt32(nearestInt(0.5*float32(float32(id*scales[ib])-1)), 0, 15)
			ss := binary.LittleEndian.Uint32(b[66+4*ib:]) | uint32(l)<<28
			binary.LittleEndian.PutUint32(b[66+4*ib:], ss)
		}
	}
}

// maxOf returns the largest of xs.
func maxOf(xs []float32) float32 {
	m := xs[0]
	for _, v := range xs[1:] {
		m = max(m, v)
	}
	return m
}

// quantIQ3XXS quantizes whole blocks without importance (quantize_row_iq3_xxs_ref).
func quantIQ3XXS(src []float32, dst []byte) { quantIQ3XXSRow(src, dst, nil) }

// dotIQ3XXS is the reference dot product (Type.Dot), as
// ggml_vec_dot_iq3_xxs_q8_K.
func dotIQ3XXS(w []byte, a *ActRow) float32 {
	var sum float32
	for bi, dy := range a.D {
		b := w[bi*iq3xxsBytes : (bi+1)*iq3xxsBytes]
		q := a.Q[bi*iq3xxsElems : (bi+1)*iq3xxsElems]
		d := f16(b) * dy
		var bsum int32
		for g := 0; g < 8; g++ {
			qs := b[2+8*g : 10+8*g]
			ss := binary.LittleEndian.Uint32(b[66+4*g:])
			ls := int32(2*(ss>>28) + 1)
			var sumi int32
			for l := 0; l < 4; l++ {
				signs := iqSigns[ss>>(7*uint(l))&127]
				g1, g2 := uint64(iq3xxsGrid[qs[2*l]]), uint64(iq3xxsGrid[qs[2*l+1]])
				ql := q[32*g+8*l : 32*g+8*l+8]
				for j := 0; j < 4; j++ {
					sumi += int32(gridByte(g1, j)) * int32(ql[j]) * isignOf(signs, j)
					sumi += int32(gridByte(g2, j)) * int32(ql[j+4]) * isignOf(signs, j+4)
				}
			}
			bsum += sumi * ls
		}
		sum += float32(d * float32(bsum))
	}
	return 0.25 * sum
}

func init() {
	register(&Type{
		DType: tensor.IQ3_XXS, BlockSize: iq3xxsElems, BlockBytes: iq3xxsBytes, Scales: []int{0},
		Dequantize: dequantIQ3XXS, Quantize: quantIQ3XXS, QuantizeWeighted: quantIQ3XXSRow,
		Act: ActQ8_K, Dot: dotIQ3XXS,
	})
}

// iq3xxsGrid is ggml's iq3xxs_grid: 256 points, 4 magnitudes each.
var iq3xxsGrid = [256]uint32{
	0x04040404, 0x04040414, 0x04040424, 0x04040c0c, 0x04040c1c, 0x04040c3e, 0x04041404, 0x04041414,
	0x04041c0c, 0x04042414, 0x04043e1c, 0x04043e2c, 0x040c040c, 0x040c041c, 0x040c0c04, 0x040c0c14,
	0x040c140c, 0x040c142c, 0x040c1c04, 0x040c1c14, 0x040c240c, 0x040c2c24, 0x040c3e04, 0x04140404,
	0x04140414, 0x04140424, 0x04140c0c, 0x04141404, 0x04141414, 0x04141c0c, 0x04141c1c, 0x04141c3e,
	0x04142c0c, 0x04142c3e, 0x04143e2c, 0x041c040c, 0x041c043e, 0x041c0c04, 0x041c0c14, 0x041c142c,
	0x041c3e04, 0x04240c1c, 0x04241c3e, 0x04242424, 0x04242c3e, 0x04243e1c, 0x04243e2c, 0x042c040c,
	0x042c043e, 0x042c1c14, 0x042c2c14, 0x04341c2c, 0x04343424, 0x043e0c04, 0x043e0c24, 0x043e0c34,
	0x043e241c, 0x043e340c, 0x0c04040c, 0x0c04041c, 0x0c040c04, 0x0c040c14, 0x0c04140c, 0x0c04141c,
	0x0c041c04, 0x0c041c14, 0x0c041c24, 0x0c04243e, 0x0c042c04, 0x0c0c0404, 0x0c0c0414, 0x0c0c0c0c,
	0x0c0c1404, 0x0c0c1414, 0x0c14040c, 0x0c14041c, 0x0c140c04, 0x0c140c14, 0x0c14140c, 0x0c141c04,
	0x0c143e14, 0x0c1c0404, 0x0c1c0414, 0x0c1c1404, 0x0c1c1c0c, 0x0c1c2434, 0x0c1c3434, 0x0c24040c,
	0x0c24042c, 0x0c242c04, 0x0c2c1404, 0x0c2c1424, 0x0c2c2434, 0x0c2c3e0c, 0x0c34042c, 0x0c3e1414,
	0x0c3e2404, 0x14040404, 0x14040414, 0x14040c0c, 0x14040c1c, 0x14041404, 0x14041414, 0x14041434,
	0x14041c0c, 0x14042414, 0x140c040c, 0x140c041c, 0x140c042c, 0x140c0c04, 0x140c0c14, 0x140c140c,
	0x140c1c04, 0x140c341c, 0x140c343e, 0x140c3e04, 0x14140404, 0x14140414, 0x14140c0c, 0x14140c3e,
	0x14141404, 0x14141414, 0x14141c3e, 0x14142404, 0x14142c2c, 0x141c040c, 0x141c0c04, 0x141c0c24,
	0x141c3e04, 0x141c3e24, 0x14241c2c, 0x14242c1c, 0x142c041c, 0x142c143e, 0x142c240c, 0x142c3e24,
	0x143e040c, 0x143e041c, 0x143e0c34, 0x143e242c, 0x1c04040c, 0x1c040c04, 0x1c040c14, 0x1c04140c,
	0x1c04141c, 0x1c042c04, 0x1c04342c, 0x1c043e14, 0x1c0c0404, 0x1c0c0414, 0x1c0c1404, 0x1c0c1c0c,
	0x1c0c2424, 0x1c0c2434, 0x1c14040c, 0x1c14041c, 0x1c140c04, 0x1c14142c, 0x1c142c14, 0x1c143e14,
	0x1c1c0c0c, 0x1c1c1c1c, 0x1c241c04, 0x1c24243e, 0x1c243e14, 0x1c2c0404, 0x1c2c0434, 0x1c2c1414,
	0x1c2c2c2c, 0x1c340c24, 0x1c341c34, 0x1c34341c, 0x1c3e1c1c, 0x1c3e3404, 0x24040424, 0x24040c3e,
	0x24041c2c, 0x24041c3e, 0x24042c1c, 0x24042c3e, 0x240c3e24, 0x24141404, 0x24141c3e, 0x24142404,
	0x24143404, 0x24143434, 0x241c043e, 0x241c242c, 0x24240424, 0x24242c0c, 0x24243424, 0x242c142c,
	0x242c241c, 0x242c3e04, 0x243e042c, 0x243e0c04, 0x243e0c14, 0x243e1c04, 0x2c040c14, 0x2c04240c,
	0x2c043e04, 0x2c0c0404, 0x2c0c0434, 0x2c0c1434, 0x2c0c2c2c, 0x2c140c24, 0x2c141c14, 0x2c143e14,
	0x2c1c0414, 0x2c1c2c1c, 0x2c240c04, 0x2c24141c, 0x2c24143e, 0x2c243e14, 0x2c2c0414, 0x2c2c1c0c,
	0x2c342c04, 0x2c3e1424, 0x2c3e2414, 0x34041424, 0x34042424, 0x34042434, 0x34043424, 0x340c140c,
	0x340c340c, 0x34140c3e, 0x34143424, 0x341c1c04, 0x341c1c34, 0x34242424, 0x342c042c, 0x342c2c14,
	0x34341c1c, 0x343e041c, 0x343e140c, 0x3e04041c, 0x3e04042c, 0x3e04043e, 0x3e040c04, 0x3e041c14,
	0x3e042c14, 0x3e0c1434, 0x3e0c2404, 0x3e140c14, 0x3e14242c, 0x3e142c14, 0x3e1c0404, 0x3e1c0c2c,
	0x3e1c1c1c, 0x3e1c3404, 0x3e24140c, 0x3e24240c, 0x3e2c0404, 0x3e2c0414, 0x3e2c1424, 0x3e341c04,
}
