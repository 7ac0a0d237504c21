package gptqggml

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// TestTernaryScale: ternaryScale's binary16 scale has a weighted error
// within 1e-6 of the least over every positive finite binary16 value
// (exhaustive), and never above that of ggml's scale (the largest
// magnitude); degenerate blocks keep ggml's.
func TestTernaryScale(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for trial := 0; trial < 12; trial++ {
		x, w := make([]float32, 256), make([]float32, 256)
		for i := range x {
			x[i] = float32(r.NormFloat64() * math.Pow(10, float64(trial%4-3)))
			if trial%3 == 1 && i%17 == 0 {
				x[i] *= 8 // outliers
			}
			w[i] = float32(math.Exp(2 * r.NormFloat64()))
		}
		if trial%2 == 0 {
			w = nil
		}
		d := ternaryScale(x, w)
		if tensor.F16ToF32(tensor.F32ToF16(d)) != d {
			t.Fatalf("trial %d: scale %g is not a binary16 value", trial, d)
		}
		got := ternaryErr(x, w, float64(d))
		var amax float32
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		ggmlErr := ternaryErr(x, w, float64(tensor.F16ToF32(tensor.F32ToF16(amax))))
		best := math.Inf(1)
		for h := uint16(1); h < 0x7c00; h++ {
			best = min(best, ternaryErr(x, w, float64(tensor.F16ToF32(h))))
		}
		t.Logf("trial %d: error %.6g (scale %.4g of max %.4g), exhaustive %.6g, ggml's %.6g", trial, got, d, amax, best, ggmlErr)
		if got > best*(1+1e-6) || got > ggmlErr {
			t.Errorf("trial %d: error %.9g, exhaustive best %.9g, ggml's %.9g", trial, got, best, ggmlErr)
		}
	}
	for _, x := range [][]float32{make([]float32, 256), {float32(math.Inf(1)), 1}, {float32(math.NaN()), 1}} {
		_ = ternaryScale(x, nil) // no panic
	}
	if d := ternaryScale(make([]float32, 256), nil); d != 0 {
		t.Errorf("all-zero block: scale %g", d)
	}
}
