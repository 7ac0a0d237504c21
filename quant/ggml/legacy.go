package ggml

import "encoding/binary"

// Legacy 32-element block quantizers: Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0.
//
// Without weights (quantize_row_q*_ref): the symmetric types take
// d = max/-8 (Q4_0) or max/-16 (Q5_0), where max is the value of largest
// magnitude, and store trunc(x/d + 8.5) (+16.5) clamped to 15 (31); Q8_0
// takes d = amax/127 and stores round-half-away(x/d); Q4_1 and Q5_1 take
// d = (max-min)/15 (/31), m = min, and store trunc((x-min)/d + 0.5).
//
// With weights (quantize_row_q*_impl): each element's weight is
// qw·√(σ² + x²) with σ² = Σx²/n over the whole row; Q4_0 and Q5_0 search the
// scale with make_qx_quants (nmax 8 and 16), Q4_1 and Q5_1 fit scale and
// offset with make_qkx3_quants (nmax 15 and 31, rmin -0.9, rdelta 0.05, 36
// steps). Q8_0 has no weighted form.

// rowSigma2 is Σx²/n over a whole row, the σ² of the legacy weighted
// quantizers.
func rowSigma2(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += float32(v * v)
	}
	return s / float32(len(x))
}

// legacyWeights fills w with qw·√(σ² + x²).
func legacyWeights(w, xb, qw []float32, sigma2 float32) {
	for j := range w {
		w[j] = qw[j] * sqrt32(sigma2+float32(xb[j]*xb[j]))
	}
}

func minInt32(a, b int32) int32 {
	if a < b {
		return a
	}
	return b
}

// getNibbles32 reads 32 nibbles packed as in Q4_0: byte j holds elements
// j (low) and j+16 (high).
func getNibbles32(qs []byte, codes []int) {
	for j := 0; j < 16; j++ {
		codes[j] = int(qs[j] & 0x0f)
		codes[j+16] = int(qs[j] >> 4)
	}
}

// putNibbles32 is the inverse of getNibbles32 (codes masked to 4 bits).
func putNibbles32(codes []int, qs []byte) {
	for j := 0; j < 16; j++ {
		qs[j] = byte(codes[j]&0x0f) | byte(codes[j+16]&0x0f)<<4
	}
}

// getQ5Codes reads the 5-bit codes of a Q5_0 or Q5_1 block from its qh
// and qs fields.
func getQ5Codes(qh, qs []byte, codes []int) {
	getNibbles32(qs, codes)
	h := binary.LittleEndian.Uint32(qh)
	for i := range codes {
		codes[i] |= int(h>>uint(i)&1) << 4
	}
}

// putQ5Codes is the inverse of getQ5Codes.
func putQ5Codes(codes []int, qh, qs []byte) {
	putNibbles32(codes, qs)
	var h uint32
	for i, c := range codes {
		h |= uint32(c>>4&1) << uint(i)
	}
	binary.LittleEndian.PutUint32(qh, h)
}
