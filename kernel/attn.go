package kernel

import (
	"fmt"
	"math"
)

// Attention and activation helpers: scores of a block of queries against
// strided key rows (through the matrix micro-kernel), exp-and-sum for the
// softmax, weighted sums of strided value rows, and SiLU(g)·u. The float32
// exp is Cephes' expf (within about 2 ulps of the exact value); SIMD paths
// evaluate the same polynomial with fused multiply-adds.

// Scores sets dst[i*ds+p] = scale · (q_i · k_p) for i < nq and p < nk,
// where q_i = q[i*qs : i*qs+hd] and k_p = k[p*ks : p*ks+hd].
func Scores(dst []float32, ds int, q []float32, qs, nq int, k []float32, ks, nk, hd int, scale float32) {
	if nq <= 0 || nk <= 0 {
		return
	}
	if hd <= 0 || len(q) < (nq-1)*qs+hd || len(k) < (nk-1)*ks+hd || len(dst) < (nq-1)*ds+nk {
		panic(fmt.Sprintf("kernel.Scores: buffers too small (%d queries, %d keys, width %d)", nq, nk, hd))
	}
	lvl := active
	nr := microNR(lvl)
	var wp, xp [4]*float32
	var acc [16]float32
	for i0 := 0; i0 < nq; i0 += nr {
		ni := min(nr, nq-i0)
		for j := range xp {
			xp[j] = &q[(i0+min(j, ni-1))*qs]
		}
		for p0 := 0; p0 < nk; p0 += 4 {
			np := min(4, nk-p0)
			for j := range wp {
				wp[j] = &k[(p0+min(j, np-1))*ks]
			}
			micro(lvl, &wp, &xp, hd, &acc)
			for i := 0; i < ni; i++ {
				row := dst[(i0+i)*ds+p0:]
				for j := 0; j < np; j++ {
					row[j] = scale * acc[4*j+i]
				}
			}
		}
	}
}

// ExpSub sets x[i] = exp(x[i] − m) and returns their sum (m is usually the
// maximum of x, so that no term overflows).
func ExpSub(x []float32, m float32) float32 {
	return expSub(active, x, m)
}

// Softmax sets x[i] = exp(x[i] − max(x)) and returns their sum, by which
// the caller divides (len(x) > 0; NaNs are not handled).
func Softmax(x []float32) float32 {
	l := active
	return expSub(l, x, maxf(l, x))
}

// SiLUMul sets g[i] = silu(g[i]) · u[i] (len(u) >= len(g)), silu(a) =
// a / (1 + exp(−a)).
func SiLUMul(g, u []float32) {
	u = u[:len(g)]
	siluMul(active, g, u)
}

// WeightedSum sets dst[c] = Σ_i p[i] · v[i*vs+c] for c < len(dst) and
// i < len(p).
func WeightedSum(dst, p, v []float32, vs int) {
	if len(p) == 0 {
		clear(dst)
		return
	}
	if len(v) < (len(p)-1)*vs+len(dst) {
		panic(fmt.Sprintf("kernel.WeightedSum: %d rows of stride %d and width %d need %d values, have %d",
			len(p), vs, len(dst), (len(p)-1)*vs+len(dst), len(v)))
	}
	wsum(active, dst, p, v, vs)
}

// expf32 is Cephes' expf in float32: exp(x) = 2^n · e^r with n =
// round(x·log2 e) and |r| ≤ ln2/2.
func expf32(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	if x < -88.72283 { // far below the smallest normal
		if x != x {
			return x
		}
		return 0
	}
	t := x * log2e
	var n float32
	if t >= 0 {
		n = float32(int32(t + 0.5))
	} else {
		n = float32(int32(t - 0.5))
	}
	r := x - n*c1
	r -= n * c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*(r*r) + r + 1
	// 2^n in two steps where it is not a normal float32: n = 128 (x just
	// below the overflow bound) or n < -126 (subnormal results).
	ni := int32(n)
	if ni > 127 {
		return p * 2 * math.Float32frombits(uint32(ni-1+127)<<23)
	}
	if ni < -126 {
		return p * math.Float32frombits(uint32(ni+126+127)<<23) * 0x1p-126
	}
	return p * math.Float32frombits(uint32(ni+127)<<23)
}

func expSubGeneric(x []float32, m float32) float32 {
	var s float32
	for i, v := range x {
		e := expf32(v - m)
		x[i] = e
		s += e
	}
	return s
}

func maxGeneric(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	return m
}

func siluMulGeneric(g, u []float32) {
	u = u[:len(g)]
	for i, a := range g {
		g[i] = a / (1 + expf32(-a)) * u[i]
	}
}

func wsumGeneric(l level, dst, p, v []float32, vs int) {
	clear(dst)
	w := len(dst)
	for i, a := range p {
		axpy(l, a, v[i*vs:i*vs+w], dst)
	}
}
