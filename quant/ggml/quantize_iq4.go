package ggml

import "encoding/binary"

// IQ4_NL and IQ4_XS quantizers: ggml's quantize_row_iq4_nl_impl, which
// both types share (IQ4_NL: one 32-element block per scale; IQ4_XS: eight
// such blocks under a 256-element super-block).
//
// Per 32-element block, with weights qw·√(σ² + x²) (σ² = 2Σx²/n over the
// super-block) or x² without importance: start from d = max/127 (max the
// value of largest magnitude, mapped to the table's -127 end), pick the
// nearest non-linear level (best_index_int8 on the iq4nl table) for each
// x/d, and take the weighted least-squares d; then try the 15 inverse
// scales (k - 127)/max, k = -7..7, and keep the d with the largest
// Σwqx²/Σwq². IQ4_NL stores that d (binary16) and re-picks the levels with
// it. IQ4_XS stores d_super = -max_d/32 and a signed 6-bit multiple of it
// per block, and re-picks the levels with each block's d_super·l.
//
// llama-quantize calls this search (ntry 7) with or without importance;
// ggml's quantize_row_iq4_nl_ref (ntry -1) is a different, unused path.

const iq4Ntry = 7

// iq4Block searches the scale of one 32-element block xb with weights w
// and writes the levels to L. It returns 0 for an all-zero block.
func iq4Block(xb, w []float32, L []uint8) float32 {
	var amax, max float32
	for _, v := range xb {
		if ax := abs32(v); ax > amax {
			amax = ax
			max = v
		}
	}
	if amax < groupMaxEps {
		return 0
	}
	v0 := float32(iq4nlValues[0])
	d := -max / v0
	id := 1 / d
	var sumqx, sumq2 float32
	for j, v := range xb {
		l := bestIndexInt8(iq4nlValues[:], id*v)
		L[j] = uint8(l)
		q := float32(iq4nlValues[l])
		sumqx += float32(w[j] * q * v)
		sumq2 += float32(w[j] * q * q)
	}
	d = sumqx / sumq2
	best := d * sumqx
	for itry := -iq4Ntry; itry <= iq4Ntry; itry++ {
		id = float32(itry+int(iq4nlValues[0])) / max
		sumqx, sumq2 = 0, 0
		for j, v := range xb {
			l := bestIndexInt8(iq4nlValues[:], id*v)
			q := float32(iq4nlValues[l])
			sumqx += float32(w[j] * q * v)
			sumq2 += float32(w[j] * q * q)
		}
		if sumq2 > 0 && sumqx*sumqx > best*sumq2 {
			d = sumqx / sumq2
			best = d * sumqx
		}
	}
	return d
}

// iq4Weights fills w with qw·√(σ² + x²), or x² when qw is nil.
func iq4Weights(w, xb, qw []float32, sigma2 float32) {
	for j, v := range xb {
		if qw != nil {
			w[j] = qw[j] * sqrt32(sigma2+float32(v*v))
		} else {
			w[j] = v * v
		}
	}
}

// iq4Sigma2 is 2Σx²/n over a super-block, computed as ggml does.
func iq4Sigma2(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += float32(v * v)
	}
	return s * (2 / float32(len(x)))
}

// packIQ4 packs 32 levels per 16 bytes: byte j holds levels j and j+16.
func packIQ4(L []uint8, q []byte) {
	for i := 0; i < len(L)/32; i++ {
		for j := 0; j < 16; j++ {
			q[16*i+j] = L[32*i+j] | L[32*i+16+j]<<4
		}
	}
}

// quantIQ4NL is quantize_iq4_nl: qwRow is nil or one row of weights.
func quantIQ4NL(src []float32, dst []byte, qwRow []float32) {
	var L [32]uint8
	var w [32]float32
	for ib := 0; ib < len(src)/iq4nlElems; ib++ {
		xb := src[ib*iq4nlElems : (ib+1)*iq4nlElems]
		b := dst[ib*iq4nlBytes : (ib+1)*iq4nlBytes]
		var qw []float32
		if qwRow != nil {
			qw = qwRow[ib*iq4nlElems:]
		}
		iq4Weights(w[:], xb, qw, iq4Sigma2(xb))
		d := iq4Block(xb, w[:], L[:])
		putF16(b, d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		for j, v := range xb {
			L[j] = uint8(bestIndexInt8(iq4nlValues[:], id*v))
		}
		packIQ4(L[:], b[2:18])
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
