package ggml

import (
	"encoding/binary"

	"github.com/terse-llm/terse/tensor"
)

// IQ2_XXS is ggml's 2.0625-bit lattice type: super-blocks of 256 elements
// in 66 bytes, eight groups of 32, each four runs of 8 elements coded as
// one point of iq2xxsGrid (values 8, 25, 43) with sign bits.
//
//	offset size  field
//	0      2     d   binary16 super-block scale
//	2      64    qs  8 bytes per group of 32, read as two little-endian
//	                 uint32 a0, a1: byte l of a0 indexes iq2xxsGrid for
//	                 run l; bits 7l..7l+6 of a1 are run l's 7 sign bits
//	                 (iqSigns); bits 28..31 of a1 are the group scale ls
//
// Group scale db = d * (0.5 + ls) * 0.25; element j of run l is
// db * grid byte j * sign j.
const (
	iq2xxsElems = 256
	iq2xxsBytes = 66
)

func dequantIQ2XXS(src []byte, dst []float32) {
	for i := 0; i < len(dst)/iq2xxsElems; i++ {
		b := src[i*iq2xxsBytes : (i+1)*iq2xxsBytes]
		y := dst[i*iq2xxsElems : (i+1)*iq2xxsElems]
		d := f16(b)
		for g := 0; g < 8; g++ {
			qs := b[2+8*g : 10+8*g]
			a1 := binary.LittleEndian.Uint32(qs[4:])
			db := d * (0.5 + float32(a1>>28)) * 0.25
			for l := 0; l < 4; l++ {
				grid := iq2xxsGrid[qs[l]]
				signs := iqSigns[a1>>(7*uint(l))&127]
				yl := y[32*g+8*l : 32*g+8*l+8]
				for j := range yl {
					yl[j] = db * float32(gridByte(grid, j)) * signOf(signs, j)
				}
			}
		}
	}
}

// quantIQ2XXSRow is quantize_row_iq2_xxs_impl for one row with importance
// qw (llama.cpp requires it).
func quantIQ2XXSRow(src []float32, dst []byte, qw []float32) {
	x := iq2XXSIndex()
	const kMaxQ = 3
	var scales [8]float32
	var w, waux, xval [32]float32
	var l, laux [32]int8
	var lq [32]uint8
	var signs [4]uint8
	var idx [4]int
	for ibl := 0; ibl < len(src)/iq2xxsElems; ibl++ {
		xbl := src[ibl*iq2xxsElems : (ibl+1)*iq2xxsElems]
		b := dst[ibl*iq2xxsBytes : (ibl+1)*iq2xxsBytes]
		clear(b)
		var sumx2 float32
		for _, v := range xbl {
			sumx2 += float32(v * v)
		}
		sigma2 := sumx2 / iq2xxsElems
		var maxScale float32
		for ib := 0; ib < 8; ib++ {
			xb := xbl[32*ib : 32*ib+32]
			iq3Weights(xb, qw[iq2xxsElems*ibl+32*ib:], sigma2, w[:], waux[:])
			iq3Signs(xb, w[:], xval[:], signs[:], true)
			if maxOf(xval[:]) < groupMaxEps {
				scales[ib] = 0
				clear(l[:])
				continue
			}
			scale := makeQpQuants(32, kMaxQ+1, xval[:], lq[:], w[:])
			for i, v := range lq {
				l[i] = int8(v)
			}
			effMax := scale * kMaxQ
			var best float32
			for is := -6; is <= 6; is++ {
				id := (2*kMaxQ - 1 + float32(float32(is)*0.1)) / effMax
				thisScale := 1 / id
				for k := 0; k < 4; k++ {
					u := iq2Levels(xval[8*k:], id, laux[8*k:])
					if x.onGrid[u] < 0 {
						x.bestNeighbour(u, xval[8*k:8*k+8], waux[8*k:8*k+8], thisScale, laux[8*k:])
					}
				}
				sumqx, sumq2 := iq3Sums(w[:], xval[:], laux[:])
				if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
					scale = sumqx / sumq2
					best = scale * sumqx
					l = laux
				}
			}
			if scale > 0 {
				id := 1 / scale
				for k := 0; k < 4; k++ {
					var lk [8]int8
					u := iq2Levels(xval[8*k:], id, lk[:])
					g := int(x.onGrid[u])
					if g < 0 {
						g = x.bestNeighbour(u, xval[8*k:8*k+8], waux[8*k:8*k+8], scale, l[8*k:])
					}
					for i, q := range x.point[g] {
						l[8*k+i] = (q - 1) / 2
					}
				}
				if sumqx, sumq2 := iq3Sums(w[:], xval[:], l[:]); sumq2 > 0 {
					scale = sumqx / sumq2
				}
			}
			if scale < 0 {
				scale = -scale
				for k := range signs {
					signs[k] = ^signs[k] & 127
				}
			}
			var ss uint32
			for k := 0; k < 4; k++ {
				// every run is on the grid now (ggml aborts otherwise)
				idx[k] = x.gridOf(l[8*k:])
				b[2+8*ib+k] = byte(idx[k])
				ss |= uint32(signs[k]) << (7 * uint(k))
			}
			binary.LittleEndian.PutUint32(b[6+8*ib:], ss)
			scales[ib] = scale
			maxScale = max(maxScale, scale)
		}
		if maxScale == 0 {
			clear(b)
			continue
		}
		d := maxScale / 31
		putF16(b, d)
		id := 1 / d
		for ib := 0; ib < 8; ib++ {
			lv := clampInt32(nearestInt(0.5*float32(float32(id*scales[ib])-1)), 0, 15)
			ss := binary.LittleEndian.Uint32(b[6+8*ib:]) | uint32(lv)<<28
			binary.LittleEndian.PutUint32(b[6+8*ib:], ss)
		}
	}
}

// quantIQ2XXS is the descriptor's Quantize: Quantize refuses IQ2_XXS
// without importance, as llama.cpp does, so this runs only when the
// descriptor is called directly, with unit importance.
func quantIQ2XXS(src []float32, dst []byte) {
	quantIQ2XXSRow(src, dst, unitImportance(len(src)))
}

// unitImportance returns n importance weights of 1.
func unitImportance(n int) []float32 {
	w := make([]float32, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// dotIQ2XXS is the reference dot product (Type.Dot), as
// ggml_vec_dot_iq2_xxs_q8_K.
func dotIQ2XXS(w []byte, a *ActRow) float32 {
	var sum float32
	for bi, dy := range a.D {
		b := w[bi*iq2xxsBytes : (bi+1)*iq2xxsBytes]
		q := a.Q[bi*iq2xxsElems : (bi+1)*iq2xxsElems]
		d := f16(b) * dy
		var bsum int32
		for g := 0; g < 8; g++ {
			qs := b[2+8*g : 10+8*g]
			a1 := binary.LittleEndian.Uint32(qs[4:])
			ls := int32(2*(a1>>28) + 1)
			var sumi int32
			for l := 0; l < 4; l++ {
				grid := iq2xxsGrid[qs[l]]
				signs := iqSigns[a1>>(7*uint(l))&127]
				ql := q[32*g+8*l : 32*g+8*l+8]
				for j, v := range ql {
					sumi += int32(gridByte(grid, j)) * int32(v) * isignOf(signs, j)
				}
			}
			bsum += sumi * ls
		}
		sum += float32(d * float32(bsum))
	}
	return 0.125 * sum
}

func init() {
	register(&Type{
		DType: tensor.IQ2_XXS, BlockSize: iq2xxsElems, BlockBytes: iq2xxsBytes, Scales: []int{0},
		Dequantize: dequantIQ2XXS, Quantize: quantIQ2XXS, QuantizeWeighted: quantIQ2XXSRow,
		NeedsImportance: true,
		Act:             ActQ8_K, Dot: dotIQ2XXS,
	})
}

// iq2xxsGrid is ggml's iq2xxs_grid: 256 points, 8 magnitudes each.
var iq2xxsGrid = [256]uint64{
	0x0808080808080808, 0x080808080808082b, 0x0808080808081919, 0x0808080808082b08,
	0x0808080808082b2b, 0x0808080808190819, 0x0808080808191908, 0x08080808082b0808,
	0x08080808082b082b, 0x08080808082b2b08, 0x08080808082b2b2b, 0x0808080819080819,
	0x0808080819081908, 0x0808080819190808, 0x0808080819192b08, 0x08080808192b0819,
	0x08080808192b1908, 0x080808082b080808, 0x080808082b08082b, 0x080808082b082b2b,
	0x080808082b2b082b, 0x0808081908080819, 0x0808081908081908, 0x0808081908190808,
	0x0808081908191919, 0x0808081919080808, 0x080808192b081908, 0x080808192b192b08,
	0x0808082b08080808, 0x0808082b0808082b, 0x0808082b082b082b, 0x0808082b2b08082b,
	0x0808190808080819, 0x0808190808081908, 0x0808190808190808, 0x08081908082b0819,
	0x08081908082b1908, 0x0808190819080808, 0x080819081908082b, 0x0808190819082b08,
	0x08081908192b0808, 0x080819082b080819, 0x080819082b081908, 0x080819082b190808,
	0x080819082b2b1908, 0x0808191908080808, 0x080819190808082b, 0x0808191908082b08,
	0x08081919082b0808, 0x080819191908192b, 0x08081919192b2b19, 0x080819192b080808,
	0x080819192b190819, 0x0808192b08082b19, 0x0808192b08190808, 0x0808192b19080808,
	0x0808192b2b081908, 0x0808192b2b2b1908, 0x08082b0808080808, 0x08082b0808081919,
	0x08082b0808082b08, 0x08082b0808191908, 0x08082b08082b2b08, 0x08082b0819080819,
	0x08082b0819081908, 0x08082b0819190808, 0x08082b081919082b, 0x08082b082b082b08,
	0x08082b1908081908, 0x08082b1919080808, 0x08082b2b0808082b, 0x08082b2b08191908,
	0x0819080808080819, 0x0819080808081908, 0x0819080808190808, 0x08190808082b0819,
	0x0819080819080808, 0x08190808192b0808, 0x081908082b081908, 0x081908082b190808,
	0x081908082b191919, 0x0819081908080808, 0x0819081908082b08, 0x08190819082b0808,
	0x0819081919190808, 0x0819081919192b2b, 0x081908192b080808, 0x0819082b082b1908,
	0x0819082b19081919, 0x0819190808080808, 0x0819190808082b08, 0x08191908082b0808,
	0x08191908082b1919, 0x0819190819082b19, 0x081919082b080808, 0x0819191908192b08,
	0x08191919192b082b, 0x0819192b08080808, 0x0819192b0819192b, 0x08192b0808080819,
	0x08192b0808081908, 0x08192b0808190808, 0x08192b0819080808, 0x08192b082b080819,
	0x08192b1908080808, 0x08192b1908081919, 0x08192b192b2b0808, 0x08192b2b19190819,
	0x082b080808080808, 0x082b08080808082b, 0x082b080808082b2b, 0x082b080819081908,
	0x082b0808192b0819, 0x082b08082b080808, 0x082b08082b08082b, 0x082b0819082b2b19,
	0x082b081919082b08, 0x082b082b08080808, 0x082b082b0808082b, 0x082b190808080819,
	0x082b190808081908, 0x082b190808190808, 0x082b190819080808, 0x082b19081919192b,
	0x082b191908080808, 0x082b191919080819, 0x082b1919192b1908, 0x082b192b2b190808,
	0x082b2b0808082b08, 0x082b2b08082b0808, 0x082b2b082b191908, 0x082b2b2b19081908,
	0x1908080808080819, 0x1908080808081908, 0x1908080808190808, 0x1908080808192b08,
	0x19080808082b0819, 0x19080808082b1908, 0x1908080819080808, 0x1908080819082b08,
	0x190808081919192b, 0x19080808192b0808, 0x190808082b080819, 0x190808082b081908,
	0x190808082b190808, 0x1908081908080808, 0x19080819082b0808, 0x19080819192b0819,
	0x190808192b080808, 0x190808192b081919, 0x1908082b08080819, 0x1908082b08190808,
	0x1908082b19082b08, 0x1908082b1919192b, 0x1908082b192b2b08, 0x1908190808080808,
	0x1908190808082b08, 0x19081908082b0808, 0x190819082b080808, 0x190819082b192b19,
	0x190819190819082b, 0x19081919082b1908, 0x1908192b08080808, 0x19082b0808080819,
	0x19082b0808081908, 0x19082b0808190808, 0x19082b0819080808, 0x19082b0819081919,
	0x19082b1908080808, 0x19082b1919192b08, 0x19082b19192b0819, 0x19082b192b08082b,
	0x19082b2b19081919, 0x19082b2b2b190808, 0x1919080808080808, 0x1919080808082b08,
	0x1919080808190819, 0x1919080808192b19, 0x19190808082b0808, 0x191908082b080808,
	0x191908082b082b08, 0x1919081908081908, 0x191908191908082b, 0x191908192b2b1908,
	0x1919082b2b190819, 0x191919082b190808, 0x191919082b19082b, 0x1919191908082b2b,
	0x1919192b08080819, 0x1919192b19191908, 0x19192b0808080808, 0x19192b0808190819,
	0x19192b0808192b19, 0x19192b08192b1908, 0x19192b1919080808, 0x19192b2b08082b08,
	0x192b080808081908, 0x192b080808190808, 0x192b080819080808, 0x192b0808192b2b08,
	0x192b081908080808, 0x192b081919191919, 0x192b082b08192b08, 0x192b082b192b0808,
	0x192b190808080808, 0x192b190808081919, 0x192b191908190808, 0x192b19190819082b,
	0x192b19192b081908, 0x192b2b081908082b, 0x2b08080808080808, 0x2b0808080808082b,
	0x2b08080808082b2b, 0x2b08080819080819, 0x2b0808082b08082b, 0x2b08081908081908,
	0x2b08081908192b08, 0x2b08081919080808, 0x2b08082b08190819, 0x2b08190808080819,
	0x2b08190808081908, 0x2b08190808190808, 0x2b08190808191919, 0x2b08190819080808,
	0x2b081908192b0808, 0x2b08191908080808, 0x2b0819191908192b, 0x2b0819192b191908,
	0x2b08192b08082b19, 0x2b08192b19080808, 0x2b08192b192b0808, 0x2b082b080808082b,
	0x2b082b1908081908, 0x2b082b2b08190819, 0x2b19080808081908, 0x2b19080808190808,
	0x2b190808082b1908, 0x2b19080819080808, 0x2b1908082b2b0819, 0x2b1908190819192b,
	0x2b1908192b080808, 0x2b19082b19081919, 0x2b19190808080808, 0x2b191908082b082b,
	0x2b19190819081908, 0x2b19191919190819, 0x2b192b082b080819, 0x2b192b19082b0808,
	0x2b2b08080808082b, 0x2b2b080819190808, 0x2b2b08082b081919, 0x2b2b081908082b19,
	0x2b2b082b08080808, 0x2b2b190808192b08, 0x2b2b2b0819190808, 0x2b2b2b1908081908,
}
