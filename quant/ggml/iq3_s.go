package ggml

import (
	"github.com/terse-llm/terse/tensor"
)

// IQ3_S is ggml's 3.4375-bit lattice type: super-blocks of 256 elements in
// 110 bytes, eight groups of 32 with a 4-bit scale each, each run of 8
// elements two points of iq3sGrid (9-bit indices, 4 magnitudes each) with
// 8 explicit sign bits.
//
//	offset size  field
//	0      2     d       binary16 super-block scale
//	2      64    qs      low 8 bits of the grid indices, 8 per group:
//	                     bytes 2l, 2l+1 the halves of run l
//	66     8     qh      group g's byte: bit 2l (2l+1) is bit 8 of the
//	                     index of run l's first (second) half
//	74     32    signs   each run's 8 sign bits
//	106    4     scales  byte k: low nibble group 2k's scale, high nibble
//	                     group 2k+1's
//
// Group scale db = d * float32(1 + 2*ls); element j of a run is
// db * grid byte j * sign j.
const (
	iq3sElems = 256
	iq3sBytes = 110
)

// iq3sIndex returns the grid index of half h (0, 1) of run l of group g.
func iq3sIndex(b []byte, g, l, h int) int {
	return int(b[2+8*g+2*l+h]) | int(b[66+g])<<(8-2*uint(l)-uint(h))&256
}

// iq3sScale returns group g's odd scale factor 1 + 2·ls.
func iq3sScale(b []byte, g int) int32 {
	return 1 + 2*int32(b[106+g/2]>>(4*uint(g%2))&0xf)
}

func dequantIQ3S(src []byte, dst []float32) {
	for i := 0; i < len(dst)/iq3sElems; i++ {
		b := src[i*iq3sBytes : (i+1)*iq3sBytes]
		y := dst[i*iq3sElems : (i+1)*iq3sElems]
		d := f16(b)
		for g := 0; g < 8; g++ {
			db := d * float32(iq3sScale(b, g))
			for l := 0; l < 4; l++ {
				g1 := uint64(iq3sGrid[iq3sIndex(b, g, l, 0)])
				g2 := uint64(iq3sGrid[iq3sIndex(b, g, l, 1)])
				signs := b[74+4*g+l]
				yl := y[32*g+8*l : 32*g+8*l+8]
				for j := 0; j < 4; j++ {
					yl[j] = db * float32(gridByte(g1, j)) * signOf(signs, j)
					yl[j+4] = db * float32(gridByte(g2, j)) * signOf(signs, j+4)
				}
			}
		}
	}
}

// quantIQ3SRow is quantize_row_iq3_s_impl for one row (qw nil or the
// row's importance); l carries over from group to group as ggml's buffer
// does (it matters only for a group whose weights are all zero).
func quantIQ3SRow(src []float32, dst []byte, qw []float32, l *[32]int8) {
	x := iq3SIndex()
	var scales [8]float32
	var w, waux, xval [32]float32
	var on [8]bool
	var idx [8]int
	var signs [4]uint8
	for ibl := 0; ibl < len(src)/iq3sElems; ibl++ {
		xbl := src[ibl*iq3sElems : (ibl+1)*iq3sElems]
		b := dst[ibl*iq3sBytes : (ibl+1)*iq3sBytes]
		clear(b)
		var sumx2 float32
		for _, v := range xbl {
			sumx2 += float32(v * v)
		}
		sigma2 := 2 * sumx2 / iq3sElems
		var maxScale float32
		for ib := 0; ib < 8; ib++ {
			xb := xbl[32*ib : 32*ib+32]
			var qwb []float32
			if qw != nil {
				qwb = qw[iq3sElems*ibl+32*ib:]
			}
			iq3Weights(xb, qwb, sigma2, w[:], waux[:])
			iq3Signs(xb, w[:], xval[:], signs[:], false)
			if maxOf(xval[:]) == 0 {
				scales[ib] = 0
				continue
			}
			on = [8]bool{}
			scale := iq3Search(x, xval[:], w[:], waux[:], l[:], &on, idx[:], 9, true)
			if scale < 0 {
				scale = -scale
				for k := range signs {
					signs[k] = ^signs[k]
				}
			}
			for k := 0; k < 8; k++ {
				b[2+8*ib+k] = byte(idx[k])
				b[66+ib] |= byte(idx[k]>>8) << uint(k)
			}
			copy(b[74+4*ib:78+4*ib], signs[:])
			scales[ib] = scale
			maxScale = max(maxScale, scale)
		}
		if maxScale == 0 {
			continue
		}
		d := maxScale / 31
		putF16(b, float32(d*1.033))
		id := 1 / d
		for ib := 0; ib < 8; ib += 2 {
			l1 := clampInt32(nearestInt(0.5*float32(float32(id*scales[ib])-1)), 0, 15)
			l2 := clampInt32(nearestInt(0.5*float32(float32(id*scales[ib+1])-1)), 0, 15)
			b[106+ib/2] = byte(l1) | byte(l2)<<4
		}
	}
}

// quantIQ3SW quantizes one row with importance (Type.QuantizeWeighted).
func quantIQ3SW(src []float32, dst []byte, qw []float32) {
	var l [32]int8
	quantIQ3SRow(src, dst, qw, &l)
}

// quantIQ3S quantizes whole blocks without importance (quantize_row_iq3_s_ref).
func quantIQ3S(src []float32, dst []byte) {
	var l [32]int8
	quantIQ3SRow(src, dst, nil, &l)
}

// dotIQ3S is the reference dot product (Type.Dot), as
// ggml_vec_dot_iq3_s_q8_K.
func dotIQ3S(w []byte, a *ActRow) float32 {
	var sum float32
	for bi, dy := range a.D {
		b := w[bi*iq3sBytes : (bi+1)*iq3sBytes]
		q := a.Q[bi*iq3sElems : (bi+1)*iq3sElems]
		d := f16(b) * dy
		var bsum int32
		for g := 0; g < 8; g++ {
			var sumi int32
			for l := 0; l < 4; l++ {
				g1 := uint64(iq3sGrid[iq3sIndex(b, g, l, 0)])
				g2 := uint64(iq3sGrid[iq3sIndex(b, g, l, 1)])
				signs := b[74+4*g+l]
				ql := q[32*g+8*l : 32*g+8*l+8]
				for j := 0; j < 4; j++ {
					sumi += int32(gridByte(g1, j)) * int32(ql[j]) * isignOf(signs, j)
					sumi += int32(gridByte(g2, j)) * int32(ql[j+4]) * isignOf(signs, j+4)
				}
			}
			bsum += sumi * iq3sScale(b, g)
		}
		sum += float32(d * float32(bsum))
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.IQ3_S, BlockSize: iq3sElems, BlockBytes: iq3sBytes, Scales: []int{0},
		Dequantize: dequantIQ3S, Quantize: quantIQ3S, QuantizeWeighted: quantIQ3SW,
		Act: ActQ8_K, Dot: dotIQ3S,
	})
}

// iq3sGrid is ggml's iq3s_grid: 512 points, 4 magnitudes each.
var iq3sGrid = [512]uint32{
	0x01010101, 0x01010103, 0x01010105, 0x0101010b, 0x0101010f, 0x01010301, 0x01010303, 0x01010305,
	0x01010309, 0x0101030d, 0x01010501, 0x01010503, 0x0101050b, 0x01010707, 0x01010901, 0x01010905,
	0x0101090b, 0x0101090f, 0x01010b03, 0x01010b07, 0x01010d01, 0x01010d05, 0x01010f03, 0x01010f09,
	0x01010f0f, 0x01030101, 0x01030103, 0x01030105, 0x01030109, 0x01030301, 0x01030303, 0x0103030b,
	0x01030501, 0x01030507, 0x0103050f, 0x01030703, 0x0103070b, 0x01030909, 0x01030d03, 0x01030d0b,
	0x01030f05, 0x01050101, 0x01050103, 0x0105010b, 0x0105010f, 0x01050301, 0x01050307, 0x0105030d,
	0x01050503, 0x0105050b, 0x01050701, 0x01050709, 0x01050905, 0x0105090b, 0x0105090f, 0x01050b03,
	0x01050b07, 0x01050f01, 0x01050f07, 0x01070107, 0x01070303, 0x0107030b, 0x01070501, 0x01070505,
	0x01070703, 0x01070707, 0x0107070d, 0x01070909, 0x01070b01, 0x01070b05, 0x01070d0f, 0x01070f03,
	0x01070f0b, 0x01090101, 0x01090307, 0x0109030f, 0x01090503, 0x01090509, 0x01090705, 0x01090901,
	0x01090907, 0x01090b03, 0x01090f01, 0x010b0105, 0x010b0109, 0x010b0501, 0x010b0505, 0x010b050d,
	0x010b0707, 0x010b0903, 0x010b090b, 0x010b090f, 0x010b0d0d, 0x010b0f07, 0x010d010d, 0x010d0303,
	0x010d0307, 0x010d0703, 0x010d0b05, 0x010d0f03, 0x010f0101, 0x010f0105, 0x010f0109, 0x010f0501,
	0x010f0505, 0x010f050d, 0x010f0707, 0x010f0b01, 0x010f0b09, 0x03010101, 0x03010103, 0x03010105,
	0x03010109, 0x03010301, 0x03010303, 0x03010307, 0x0301030b, 0x0301030f, 0x03010501, 0x03010505,
	0x03010703, 0x03010709, 0x0301070d, 0x03010b09, 0x03010b0d, 0x03010d03, 0x03010f05, 0x03030101,
	0x03030103, 0x03030107, 0x0303010d, 0x03030301, 0x03030309, 0x03030503, 0x03030701, 0x03030707,
	0x03030903, 0x03030b01, 0x03030b05, 0x03030f01, 0x03030f0d, 0x03050101, 0x03050305, 0x0305030b,
	0x0305030f, 0x03050501, 0x03050509, 0x03050705, 0x03050901, 0x03050907, 0x03050b0b, 0x03050d01,
	0x03050f05, 0x03070103, 0x03070109, 0x0307010f, 0x03070301, 0x03070307, 0x03070503, 0x0307050f,
	0x03070701, 0x03070709, 0x03070903, 0x03070d05, 0x03070f01, 0x03090107, 0x0309010b, 0x03090305,
	0x03090309, 0x03090703, 0x03090707, 0x03090905, 0x0309090d, 0x03090b01, 0x03090b09, 0x030b0103,
	0x030b0301, 0x030b0307, 0x030b0503, 0x030b0701, 0x030b0705, 0x030b0b03, 0x030d0501, 0x030d0509,
	0x030d050f, 0x030d0909, 0x030d090d, 0x030f0103, 0x030f0107, 0x030f0301, 0x030f0305, 0x030f0503,
	0x030f070b, 0x030f0903, 0x030f0d05, 0x030f0f01, 0x05010101, 0x05010103, 0x05010107, 0x0501010b,
	0x0501010f, 0x05010301, 0x05010305, 0x05010309, 0x0501030d, 0x05010503, 0x05010507, 0x0501050f,
	0x05010701, 0x05010705, 0x05010903, 0x05010907, 0x0501090b, 0x05010b01, 0x05010b05, 0x05010d0f,
	0x05010f01, 0x05010f07, 0x05010f0b, 0x05030101, 0x05030105, 0x05030301, 0x05030307, 0x0503030f,
	0x05030505, 0x0503050b, 0x05030703, 0x05030709, 0x05030905, 0x05030b03, 0x05050103, 0x05050109,
	0x0505010f, 0x05050503, 0x05050507, 0x05050701, 0x0505070f, 0x05050903, 0x05050b07, 0x05050b0f,
	0x05050f03, 0x05050f09, 0x05070101, 0x05070105, 0x0507010b, 0x05070303, 0x05070505, 0x05070509,
	0x05070703, 0x05070707, 0x05070905, 0x05070b01, 0x05070d0d, 0x05090103, 0x0509010f, 0x05090501,
	0x05090507, 0x05090705, 0x0509070b, 0x05090903, 0x05090f05, 0x05090f0b, 0x050b0109, 0x050b0303,
	0x050b0505, 0x050b070f, 0x050b0901, 0x050b0b07, 0x050b0f01, 0x050d0101, 0x050d0105, 0x050d010f,
	0x050d0503, 0x050d0b0b, 0x050d0d03, 0x050f010b, 0x050f0303, 0x050f050d, 0x050f0701, 0x050f0907,
	0x050f0b01, 0x07010105, 0x07010303, 0x07010307, 0x0701030b, 0x0701030f, 0x07010505, 0x07010703,
	0x07010707, 0x0701070b, 0x07010905, 0x07010909, 0x0701090f, 0x07010b03, 0x07010d07, 0x07010f03,
	0x07030103, 0x07030107, 0x0703010b, 0x07030309, 0x07030503, 0x07030507, 0x07030901, 0x07030d01,
	0x07030f05, 0x07030f0d, 0x07050101, 0x07050305, 0x07050501, 0x07050705, 0x07050709, 0x07050b01,
	0x07070103, 0x07070301, 0x07070309, 0x07070503, 0x07070507, 0x0707050f, 0x07070701, 0x07070903,
	0x07070907, 0x0707090f, 0x07070b0b, 0x07070f07, 0x07090107, 0x07090303, 0x0709030d, 0x07090505,
	0x07090703, 0x07090b05, 0x07090d01, 0x07090d09, 0x070b0103, 0x070b0301, 0x070b0305, 0x070b050b,
	0x070b0705, 0x070b0909, 0x070b0b0d, 0x070b0f07, 0x070d030d, 0x070d0903, 0x070f0103, 0x070f0107,
	0x070f0501, 0x070f0505, 0x070f070b, 0x09010101, 0x09010109, 0x09010305, 0x09010501, 0x09010509,
	0x0901050f, 0x09010705, 0x09010903, 0x09010b01, 0x09010f01, 0x09030105, 0x0903010f, 0x09030303,
	0x09030307, 0x09030505, 0x09030701, 0x0903070b, 0x09030907, 0x09030b03, 0x09030b0b, 0x09050103,
	0x09050107, 0x09050301, 0x0905030b, 0x09050503, 0x09050707, 0x09050901, 0x09050b0f, 0x09050d05,
	0x09050f01, 0x09070109, 0x09070303, 0x09070307, 0x09070501, 0x09070505, 0x09070703, 0x0907070b,
	0x09090101, 0x09090105, 0x09090509, 0x0909070f, 0x09090901, 0x09090f03, 0x090b010b, 0x090b010f,
	0x090b0503, 0x090b0d05, 0x090d0307, 0x090d0709, 0x090d0d01, 0x090f0301, 0x090f030b, 0x090f0701,
	0x090f0907, 0x090f0b03, 0x0b010105, 0x0b010301, 0x0b010309, 0x0b010505, 0x0b010901, 0x0b010909,
	0x0b01090f, 0x0b010b05, 0x0b010d0d, 0x0b010f09, 0x0b030103, 0x0b030107, 0x0b03010b, 0x0b030305,
	0x0b030503, 0x0b030705, 0x0b030f05, 0x0b050101, 0x0b050303, 0x0b050507, 0x0b050701, 0x0b05070d,
	0x0b050b07, 0x0b070105, 0x0b07010f, 0x0b070301, 0x0b07050f, 0x0b070909, 0x0b070b03, 0x0b070d0b,
	0x0b070f07, 0x0b090103, 0x0b090109, 0x0b090501, 0x0b090705, 0x0b09090d, 0x0b0b0305, 0x0b0b050d,
	0x0b0b0b03, 0x0b0b0b07, 0x0b0d0905, 0x0b0f0105, 0x0b0f0109, 0x0b0f0505, 0x0d010303, 0x0d010307,
	0x0d01030b, 0x0d010703, 0x0d010707, 0x0d010d01, 0x0d030101, 0x0d030501, 0x0d03050f, 0x0d030d09,
	0x0d050305, 0x0d050709, 0x0d050905, 0x0d050b0b, 0x0d050d05, 0x0d050f01, 0x0d070101, 0x0d070309,
	0x0d070503, 0x0d070901, 0x0d09050b, 0x0d090907, 0x0d090d05, 0x0d0b0101, 0x0d0b0107, 0x0d0b0709,
	0x0d0b0d01, 0x0d0d010b, 0x0d0d0901, 0x0d0f0303, 0x0d0f0307, 0x0f010101, 0x0f010109, 0x0f01010f,
	0x0f010501, 0x0f010505, 0x0f01070d, 0x0f010901, 0x0f010b09, 0x0f010d05, 0x0f030105, 0x0f030303,
	0x0f030509, 0x0f030907, 0x0f03090b, 0x0f050103, 0x0f050109, 0x0f050301, 0x0f05030d, 0x0f050503,
	0x0f050701, 0x0f050b03, 0x0f070105, 0x0f070705, 0x0f07070b, 0x0f070b07, 0x0f090103, 0x0f09010b,
	0x0f090307, 0x0f090501, 0x0f090b01, 0x0f0b0505, 0x0f0b0905, 0x0f0d0105, 0x0f0d0703, 0x0f0f0101,
}
