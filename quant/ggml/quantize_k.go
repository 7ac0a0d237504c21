package ggml

// K-quant quantizers: 256-element super-blocks of 16 (Q2_K, Q3_K, Q6_K) or
// 8 (Q4_K, Q5_K) sub-blocks, each sub-block scale (and min) stored as a
// small integer times the super-block's binary16 d (and dmin).
//
// Without weights (quantize_row_*_ref):
//   - Q2_K: make_qkx2_quants per 16 (levels 0..3, weights |x|, rmin -0.5,
//     rdelta 0.1, 15 steps, absolute error); scales and mins to 4 bits by
//     max/15.
//   - Q3_K: make_q3_quants per 16 (levels -4..3, with the level-moving
//     passes); signed 6-bit scales by -32/max_scale.
//   - Q4_K / Q5_K: make_qkx2_quants per 32 (levels 0..15 / 0..31, weights
//     √(Σx²/32) + |x|, rmin -1 / -0.5, rdelta 0.1, 20 / 15 steps); 6-bit
//     scales and mins by max/63.
//   - Q6_K: make_qx_quants per 16 (levels -32..31, weights x²); signed 8-bit
//     scales by -128/max_scale.
//
// With weights qw (quantize_row_*_impl):
//   - Q2_K: weights qw·√(σ² + x²) with σ² = Σx²/256 (the super-block's mean
//     square), make_qkx3_quants per 16 (rmin -0.9, rdelta 0.05, 36 steps,
//     squared error), then make_qp_quants (nmax 15) for the scales and the
//     mins, weighted by each sub-block's Σweight.
//   - Q3_K: weights qw·√(σ² + x²) with σ² = 2Σx²/256, make_qx_quants per 16
//     (nmax 4), then make_qx_quants (nmax 32) on the 16 scales weighted by
//     Σweight.
//   - Q4_K / Q5_K: weights qw·√(σ² + x²), σ² = 2Σx²/256, make_qkx3_quants
//     per 32, make_qp_quants (nmax 63) for scales and mins.
//   - Q6_K: make_qx_quants per 16 weighted by qw itself.
//
// In every type the elements are then rounded again with the stored
// (binary16-rounded) scales before packing.

// packScaleMinK4 stores 6-bit scale ls and min lm of sub-block j into the
// 12-byte Q4_K/Q5_K scales field (the inverse of scaleMinK4).
func packScaleMinK4(j int, ls, lm uint8, scales []byte) {
	if j < 4 {
		scales[j] = ls
		scales[j+4] = lm
		return
	}
	scales[j+4] = ls&0x0f | (lm&0x0f)<<4
	scales[j-4] |= (ls >> 4) << 6
	scales[j] |= (lm >> 4) << 6
}

// packQ2Bits packs 256 2-bit levels the way Q2_K and Q3_K store them: byte
// l of each 32-byte half holds levels l, l+32, l+64 and l+96 of its 128.
func packQ2Bits(L []uint8, qs []byte) {
	for j := 0; j < qkK; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
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

// q4KWeightsRef fills w with the reference Q4_K/Q5_K weights
// √(Σx²/32) + |x| of a 32-element sub-block.
func q4KWeightsRef(w, xb []float32) {
	var sumx2 float32
	for _, v := range xb {
		sumx2 += float32(v * v)
	}
	avx := sqrt32(sumx2 / 32)
	for l, v := range xb {
		w[l] = avx + abs32(v)
	}
}

// finishQ45K rounds every element of a Q4_K/Q5_K block again with its
// stored scales and mins (nmax 15 or 31) and packs the levels.
func finishQ45K(x []float32, b []byte, L []uint8, nmax int32) {
	d0, m0 := f16(b), f16(b[2:])
	for j := 0; j < 8; j++ {
		sc, m := scaleMinK4(j, b[4:16])
		d := d0 * float32(sc)
		if d == 0 {
			continue
		}
		dm := m0 * float32(m)
		for ii := 0; ii < 32; ii++ {
			l := nearestInt((x[32*j+ii] + dm) / d)
			L[32*j+ii] = uint8(clampInt32(l, 0, nmax))
		}
	}
	if nmax == 15 {
		q := b[16:144]
		for j := 0; j < qkK; j += 64 {
			for l := 0; l < 32; l++ {
				q[j/2+l] = L[j+l] | L[j+l+32]<<4
			}
		}
		return
	}
	qh := b[16:48]
	ql := b[48:176]
	clear(qh)
	m1, m2 := uint8(1), uint8(2)
	for n := 0; n < qkK; n += 64 {
		for j := 0; j < 32; j++ {
			l1 := L[n+j]
			if l1 > 15 {
				l1 -= 16
				qh[j] |= m1
			}
			l2 := L[n+j+32]
			if l2 > 15 {
				l2 -= 16
				qh[j] |= m2
			}
			ql[n/2+j] = l1 | l2<<4
		}
		m1 <<= 2
		m2 <<= 2
	}
}

// quantQ45KRef is quantize_row_q4_K_ref (nmax 15) and
// quantize_row_q5_K_ref (nmax 31).
func quantQ45KRef(src []float32, dst []byte, nmax int) {
	blockBytes := q4KBytes
	rmin, nstep := float32(-1), 20
	if nmax == 31 {
		blockBytes = q5KBytes
		rmin, nstep = -0.5, 15
	}
	var L [qkK]uint8
	var Laux [32]uint8
	var weights [32]float32
	var mins, scales [8]float32
	for i := 0; i < len(src)/qkK; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*blockBytes : (i+1)*blockBytes]
		var maxScale, maxMin float32
		for j := 0; j < 8; j++ {
			xb := x[32*j : 32*j+32]
			q4KWeightsRef(weights[:], xb)
			scales[j], mins[j] = makeQkx2Quants(32, nmax, xb, weights[:], L[32*j:], Laux[:], rmin, 0.1, nstep, false)
			if scales[j] > maxScale {
				maxScale = scales[j]
			}
			if mins[j] > maxMin {
				maxMin = mins[j]
			}
		}
		var invScale, invMin float32
		if maxScale > 0 {
			invScale = 63 / maxScale
		}
		if maxMin > 0 {
			invMin = 63 / maxMin
		}
		sc := b[4:16]
		for j := 0; j < 8; j++ {
			ls := min(63, uint8(nearestInt(invScale*scales[j])))
			lm := min(63, uint8(nearestInt(invMin*mins[j])))
			packScaleMinK4(j, ls, lm, sc)
		}
		putF16(b, maxScale/63)
		putF16(b[2:], maxMin/63)
		finishQ45K(x, b, L[:], int32(nmax))
	}
}

// quantQ45KImpl is quantize_row_q4_K_impl (nmax 15) and
// quantize_row_q5_K_impl (nmax 31) for one row.
func quantQ45KImpl(src []float32, dst []byte, qwRow []float32, nmax int) {
	blockBytes := q4KBytes
	if nmax == 31 {
		blockBytes = q5KBytes
	}
	var L [qkK]uint8
	var Laux [32]uint8
	var Ls, Lm [8]uint8
	var weights [32]float32
	var sw, mins, scales [8]float32
	for i := 0; i < len(src)/qkK; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*blockBytes : (i+1)*blockBytes]
		var sumx2 float32
		for _, v := range x {
			sumx2 += float32(v * v)
		}
		sigma2 := 2 * sumx2 / qkK
		for j := 0; j < 8; j++ {
			xb := x[32*j : 32*j+32]
			qw := qwRow[qkK*i+32*j:]
			for l, v := range xb {
				weights[l] = qw[l] * sqrt32(sigma2+float32(v*v))
			}
			var sumw float32
			for _, w := range weights {
				sumw += w
			}
			sw[j] = sumw
			scales[j], mins[j] = makeQkx3Quants(32, nmax, xb, weights[:], L[32*j:], Laux[:], -0.9, 0.05, 36, false)
		}
		dBlock := makeQpQuants(8, 63, scales[:], Ls[:], sw[:])
		mBlock := makeQpQuants(8, 63, mins[:], Lm[:], sw[:])
		sc := b[4:16]
		for j := 0; j < 8; j++ {
			packScaleMinK4(j, min(63, Ls[j]), min(63, Lm[j]), sc)
		}
		putF16(b, dBlock)
		putF16(b[2:], mBlock)
		finishQ45K(x, b, L[:], int32(nmax))
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
