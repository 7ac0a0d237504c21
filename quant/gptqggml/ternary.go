package gptqggml

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Ternary types (TQ1_0, TQ2_0)
//
// ggml's ternary quantizer ignores importance and takes the block's
// largest magnitude as its scale d (values −d, 0, d), so that every
// element below d/2 in magnitude becomes zero: for Gaussian weights that
// is most of them. Fit keeps ggml's encoding but replaces the scale with
// the one of least importance-weighted error Σ imp·(x − v)², v the value
// nearest x (ternaryScale); GPTQ then rounds each column under it.

// isTernary reports whether dt is TQ1_0 or TQ2_0.
func isTernary(dt tensor.DType) bool { return dt == tensor.TQ1_0 || dt == tensor.TQ2_0 }

// ternaryErr returns Σ w·min(x², (|x|−d)²): the weighted error of the
// values x when each takes the nearest of −d, 0, d (w nil: unit weights).
func ternaryErr(x, w []float32, d float64) float64 {
	var e float64
	for i, v := range x {
		a := math.Abs(float64(v))
		wi := 1.0
		if w != nil {
			wi = float64(w[i])
		}
		e += wi * min(a*a, (a-d)*(a-d))
	}
	return e
}

// ternaryScale returns the binary16 scale of least weighted error
// ternaryErr for the block x with weights w (nil: unit weights). For every
// split of the magnitudes into those taken to zero and the rest, the
// rest's best scale is their weighted mean magnitude; the best of those
// scales, rounded to binary16, and its binary16 neighbours are compared
// with ggml's own (the largest magnitude), which wins ties.
func ternaryScale(x, w []float32) float32 {
	n := len(x)
	type elem struct{ a, w float64 }
	es := make([]elem, n)
	var amax float64
	for i, v := range x {
		wi := 1.0
		if w != nil {
			wi = float64(w[i])
		}
		es[i] = elem{math.Abs(float64(v)), wi}
		amax = max(amax, es[i].a)
	}
	if !(amax > 0) || math.IsInf(amax, 0) {
		return float32(amax)
	}
	slices.SortFunc(es, func(p, q elem) int {
		switch {
		case p.a < q.a:
			return -1
		case p.a > q.a:
			return 1
		}
		return 0
	})
	// prefix sums of w, w·a and w·a² in ascending order of a
	pre0, pre1, pre2 := make([]float64, n+1), make([]float64, n+1), make([]float64, n+1)
	for i, e := range es {
		pre0[i+1] = pre0[i] + e.w
		pre1[i+1] = pre1[i] + e.w*e.a
		pre2[i+1] = pre2[i] + e.w*e.a*e.a
	}
	sorted := func(d float64) float64 {
		// elements of magnitude ≤ d/2 go to zero
		k, _ := slices.BinarySearchFunc(es, d/2, func(e elem, t float64) int {
			if e.a <= t {
				return -1
			}
			return 1
		})
		hi0, hi1, hi2 := pre0[n]-pre0[k], pre1[n]-pre1[k], pre2[n]-pre2[k]
		return pre2[k] + hi2 - 2*d*hi1 + d*d*hi0
	}
	// The continuous optimum is the weighted mean magnitude of the
	// elements from some k on (those left nonzero); each is scored
	// through the sums.
	var cd float32
	ce := math.Inf(1)
	for k := 0; k < n; k++ {
		if s0 := pre0[n] - pre0[k]; s0 > 0 {
			c := float32((pre1[n] - pre1[k]) / s0)
			if e := sorted(float64(c)); e < ce {
				ce, cd = e, c
			}
		}
	}
	best := tensor.F16ToF32(tensor.F32ToF16(float32(amax)))
	bestErr := ternaryErr(x, w, float64(best))
	h := tensor.F32ToF16(cd)
	for _, hh := range []uint16{h - 1, h, h + 1} {
		d := tensor.F16ToF32(hh)
		if !(d > 0) || math.IsInf(float64(d), 0) {
			continue
		}
		if e := ternaryErr(x, w, float64(d)); e < bestErr {
			best, bestErr = d, e
		}
	}
	return best
}

// setTernaryScale writes d as the binary16 scale of the ternary block blk.
func setTernaryScale(dt tensor.DType, blk []byte, d float32) {
	t, ok := ggml.Lookup(dt)
	if !ok || len(t.Scales) != 1 {
		return
	}
	binary.LittleEndian.PutUint16(blk[t.Scales[0]:], tensor.F32ToF16(d))
}
