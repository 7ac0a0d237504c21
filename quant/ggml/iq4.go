package ggml

// IQ4_NL and IQ4_XS (iq4_nl.go, iq4_xs.go) share ggml's non-linear 4-bit
// codebook and its scale search.

// iq4nlValues is ggml's kvalues_iq4nl codebook.
var iq4nlValues = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

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

// IQ4Value returns the non-linear value of IQ4_NL and IQ4_XS index q
// (its low four bits).
func IQ4Value(q byte) int8 { return iq4nlValues[q&15] }
