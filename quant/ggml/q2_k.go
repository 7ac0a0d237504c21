package ggml

import "github.com/terse-llm/terse/tensor"

// Q2_K is ggml's 2-bit k-quant: super-blocks of 256 elements in 84 bytes,
// split into 16 sub-blocks of 16 elements, each with a 4-bit scale and a
// 4-bit minimum.
//
//	offset size  field
//	0      16    scales  byte s: low nibble scale, high nibble min of sub-block s
//	16     64    qs      2-bit quants
//	80     2     d       binary16 super-block scale for the scales
//	82     2     dmin    binary16 super-block scale for the mins
//
// The 256 elements come in two halves of 128, each reading 32 bytes of qs.
// Within a half, the 2-bit field at shift 2k (k = 0..3) of bytes 0..15 forms
// the next 16 elements, then that field of bytes 16..31 the 16 after; the
// sub-block index s counts these runs of 16 in output order (0..15).
//
// For sub-block s: dl = d*float32(sc), ml = dmin*float32(m), each rounded
// to float32; element = float32(dl*float32(q)) - ml.
const q2KBytes = 84

func dequantQ2K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q2KBytes : (i+1)*q2KBytes]
		y := dst[i*qkK : (i+1)*qkK]
		scales := b[0:16]
		d := f16(b[80:])
		dmin := f16(b[82:])
		s := 0
		o := 0
		for half := 0; half < 2; half++ {
			q := b[16+32*half : 16+32*half+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for part := 0; part < 2; part++ {
					sc := scales[s]
					s++
					dl := d * float32(sc&0x0f)
					ml := dmin * float32(sc>>4)
					qq := q[16*part : 16*part+16]
					yy := y[o : o+16]
					for l := range yy {
						yy[l] = float32(dl*float32((qq[l]>>shift)&3)) - ml
					}
					o += 16
				}
			}
		}
	}
}

// requantQ2K rounds every element again with the stored scales of a Q2_K
// block (b's scales, d and dmin already written).
func requantQ2K(x []float32, b []byte, L []uint8) {
	dAll, mAll := f16(b[80:]), f16(b[82:])
	for j := 0; j < 16; j++ {
		d := dAll * float32(b[j]&0x0f)
		if d == 0 {
			continue
		}
		dm := mAll * float32(b[j]>>4)
		for ii := 0; ii < 16; ii++ {
			l := nearestInt((x[16*j+ii] + dm) / d)
			L[16*j+ii] = uint8(clampInt32(l, 0, 3))
		}
	}
}

// quantQ2KRef is quantize_row_q2_K_ref.
func quantQ2KRef(src []float32, dst []byte) {
	var L [qkK]uint8
	var Laux [16]uint8
	var weights, mins, scales [16]float32
	const q4scale = float32(15)
	for i := 0; i < len(src)/qkK; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*q2KBytes : (i+1)*q2KBytes]
		var maxScale, maxMin float32
		for j := 0; j < 16; j++ {
			for l := 0; l < 16; l++ {
				weights[l] = abs32(x[16*j+l])
			}
			scales[j], mins[j] = makeQkx2Quants(16, 3, x[16*j:], weights[:], L[16*j:], Laux[:], -0.5, 0.1, 15, true)
			if scales[j] > maxScale {
				maxScale = scales[j]
			}
			if mins[j] > maxMin {
				maxMin = mins[j]
			}
		}
		if maxScale > 0 {
			iscale := q4scale / maxScale
			for j := 0; j < 16; j++ {
				b[j] = uint8(nearestInt(iscale * scales[j]))
			}
			putF16(b[80:], maxScale/q4scale)
		} else {
			for j := 0; j < 16; j++ {
				b[j] = 0
			}
			putF16(b[80:], 0)
		}
		if maxMin > 0 {
			iscale := q4scale / maxMin
			for j := 0; j < 16; j++ {
				b[j] |= uint8(nearestInt(iscale*mins[j]) << 4)
			}
			putF16(b[82:], maxMin/q4scale)
		} else {
			putF16(b[82:], 0)
		}
		requantQ2K(x, b, L[:])
		packQ2Bits(L[:], b[16:80])
	}
}

// quantQ2KImpl is quantize_row_q2_K_impl for one row.
func quantQ2KImpl(src []float32, dst []byte, qwRow []float32) {
	var L [qkK]uint8
	var Laux [16]uint8
	var mins, scales, sw, weight [16]float32
	var Ls, Lm [16]uint8
	for i := 0; i < len(src)/qkK; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*q2KBytes : (i+1)*q2KBytes]
		sw = [16]float32{}
		var sumx2 float32
		for _, v := range x {
			sumx2 += float32(v * v)
		}
		sigma2 := sumx2 / qkK
		for j := 0; j < 16; j++ {
			qw := qwRow[qkK*i+16*j:]
			for l := 0; l < 16; l++ {
				xl := x[16*j+l]
				weight[l] = qw[l] * sqrt32(sigma2+float32(xl*xl))
			}
			for l := 0; l < 16; l++ {
				sw[j] += weight[l]
			}
			scales[j], mins[j] = makeQkx3Quants(16, 3, x[16*j:], weight[:], L[16*j:], Laux[:], -0.9, 0.05, 36, false)
		}
		dm := makeQpQuants(16, 15, scales[:], Ls[:], sw[:])
		mm := makeQpQuants(16, 15, mins[:], Lm[:], sw[:])
		putF16(b[80:], dm)
		putF16(b[82:], mm)
		for j := 0; j < 16; j++ {
			b[j] = Ls[j] | Lm[j]<<4
		}
		requantQ2K(x, b, L[:])
		packQ2Bits(L[:], b[16:80])
	}
}

// q2KGrid maps Q2_K blocks to BlockGrids.
var q2KGrid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels = gridAffine, 4, 4
		d, dmin := f16(blk[80:]), f16(blk[82:])
		for j := 0; j < 16; j++ {
			sc := blk[j]
			g.s[j] = d * float32(sc&0x0f)
			// x − ml is x + (−ml) bit for bit, signed zeros included.
			g.m[j] = -(dmin * float32(sc>>4))
		}
	},
	codes: func(blk []byte, codes []int) {
		get2Bits(blk[16:80], codes)
	},
	encode: func(codes []int, blk []byte) {
		put2Bits(codes, blk[16:80])
	},
}

// dotQ2K is the reference dot product (Type.Dot), as
// ggml_vec_dot_q2_K_q8_K: per block dy·d·Σ_s sc_s·Σ q·qy minus
// dy·dmin·Σ_s m_s·(sum of activation sub-block s).
func dotQ2K(w []byte, a *ActRow) float32 {
	var sum float32
	for b, dy := range a.D {
		blk := w[b*q2KBytes : (b+1)*q2KBytes]
		q := a.Q[b*qkK : (b+1)*qkK]
		bs := a.BS[b*16 : b*16+16]
		var sumi, summ int32
		for s := 0; s < 16; s++ {
			half, shift, part := s/8, 2*uint(s%8/2), s%2
			qs := blk[16+32*half+16*part : 16+32*half+16*part+16]
			qy := q[16*s : 16*s+16]
			var t int32
			for l, v := range qs {
				t += int32(v>>shift&3) * int32(qy[l])
			}
			sumi += int32(blk[s]&15) * t
			summ += int32(blk[s]>>4) * int32(bs[s])
		}
		sum += dy*f16(blk[80:])*float32(sumi) - dy*f16(blk[82:])*float32(summ)
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.Q2_K, BlockSize: qkK, BlockBytes: q2KBytes, Scales: []int{80, 82},
		Dequantize: dequantQ2K, Quantize: quantQ2KRef, QuantizeWeighted: quantQ2KImpl,
		Act: ActQ8_K, Dot: dotQ2K,
		grid: q2KGrid,
	})
}
