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

const qkK = 256 // elements in a k-quant super-block

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j (0..7): for
// j < 4 they are the low six bits of bytes j and j+4; for j >= 4 their low
// nibbles are in byte j+4 (scale low, min high) and their top two bits are
// the top two bits of bytes j-4 (scale) and j (min).
func scaleMinK4(j int, q []byte) (sc, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

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

// getNibblesK reads the 256 low nibbles of Q4_K/Q5_K: chunk c of 64
// elements reads bytes 32c..32c+31, low nibbles first.
func getNibblesK(qs []byte, codes []int) {
	for c := 0; c < 4; c++ {
		for l := 0; l < 32; l++ {
			b := qs[32*c+l]
			codes[64*c+l] = int(b & 0x0f)
			codes[64*c+32+l] = int(b >> 4)
		}
	}
}

// putNibblesK is the inverse of getNibblesK (codes masked to 4 bits).
func putNibblesK(codes []int, qs []byte) {
	for c := 0; c < 4; c++ {
		for l := 0; l < 32; l++ {
			qs[32*c+l] = byte(codes[64*c+l]&0x0f) | byte(codes[64*c+32+l]&0x0f)<<4
		}
	}
}

// get2Bits reads the 256 2-bit fields of Q2_K/Q3_K (see packQ2Bits).
func get2Bits(qs []byte, codes []int) {
	for j := 0; j < qkK; j += 128 {
		for l := 0; l < 32; l++ {
			b := qs[j/4+l]
			codes[j+l] = int(b & 3)
			codes[j+l+32] = int(b >> 2 & 3)
			codes[j+l+64] = int(b >> 4 & 3)
			codes[j+l+96] = int(b >> 6 & 3)
		}
	}
}

// put2Bits is the inverse of get2Bits (codes masked to 2 bits).
func put2Bits(codes []int, qs []byte) {
	for j := 0; j < qkK; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = byte(codes[j+l]&3) | byte(codes[j+l+32]&3)<<2 |
				byte(codes[j+l+64]&3)<<4 | byte(codes[j+l+96]&3)<<6
		}
	}
}

// resetK45Grid fills g from a Q4_K or Q5_K block with levels codes per
// element.
func resetK45Grid(g *BlockGrid, blk []byte, levels int) {
	g.kind, g.shift, g.levels = gridAffine, 5, levels
	d, dmin := f16(blk), f16(blk[2:])
	for j := 0; j < 8; j++ {
		sc, m := scaleMinK4(j, blk[4:16])
		g.s[j] = d * float32(sc)
		g.m[j] = -(dmin * float32(m))
	}
}

// scaleMinK4All unpacks all eight 6-bit scales and mins of a Q4_K/Q5_K
// block (the integer dot products' form of scaleMinK4).
func scaleMinK4All(p []byte) (sc, m [8]int32) {
	for j := 0; j < 4; j++ {
		sc[j] = int32(p[j] & 63)
		m[j] = int32(p[j+4] & 63)
		sc[j+4] = int32(p[j+8]&15 | (p[j]>>6)<<4)
		m[j+4] = int32(p[j+8]>>4 | (p[j+4]>>6)<<4)
	}
	return
}

// kMins returns Σ m[s]·(sum of activation sub-block s of 32) for one block.
func kMins(m *[8]int32, bs []int16) int32 {
	var t int32
	for s := range m {
		t += m[s] * (int32(bs[2*s]) + int32(bs[2*s+1]))
	}
	return t
}

// ScaleMinK4 returns the eight 6-bit sub-block scales and mins packed in
// the 12 bytes p of a Q4_K or Q5_K block (bytes 4..15), as ggml unpacks
// them.
func ScaleMinK4(p []byte) (sc, m [8]int32) { return scaleMinK4All(p) }
