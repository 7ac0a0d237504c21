package kv

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/model"
)

// TestReadKV checks that every cache's ReadKV gives back the keys and
// values attention sees: a key channel is the score of a one-hot query
// (over the scale), a value is the weighted sum with a one-hot weight.
func TestReadKV(t *testing.T) {
	specs := []string{"f32"}
	for _, ts := range testSpecs {
		specs = append(specs, ts.spec)
	}
	specs = append(specs, "h2o:0.5+q4_0", "sink:2:w16+kivi:k2v2:g16:r32")
	for _, spec := range specs {
		checkReadKV(t, spec)
	}
}

// checkReadKV fills a cache of the spec and compares its ReadKV with what
// its attention sees.
func checkReadKV(t *testing.T, spec string) {
	t.Helper()
	cfg := &testCfg
	const n, capacity = 77, 96
	{
		sp, err := Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		c, err := sp.New(cfg, capacity)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		rng := rand.New(rand.NewPCG(7, 9))
		for p := 0; p < n; p++ {
			for l := 0; l < cfg.NLayers; l++ {
				k, v := kvRows(rng, 1, cfg.KVDim(l))
				if err := c.Append(l, k[0], v[0]); err != nil {
					t.Fatalf("%s: %v", spec, err)
				}
			}
		}
		r, ok := c.(model.KVReader)
		if !ok {
			t.Fatalf("%s: %T is no model.KVReader", spec, c)
		}
		hd := cfg.HeadDim
		scratch := make([]float32, c.ScratchSize())
		for l := 0; l < cfg.NLayers; l++ {
			d := cfg.KVDim(l)
			for _, rg := range [][2]int{{0, n}, {5, 40}, {n - 1, n}, {3, 3}} {
				from, to := rg[0], rg[1]
				k, v := make([]float32, (to-from)*d), make([]float32, (to-from)*d)
				if err := r.ReadKV(l, from, to, k, v); err != nil {
					t.Fatalf("%s: layer %d [%d, %d): %v", spec, l, from, to, err)
				}
				for h := 0; h < d/hd; h++ {
					q := make([]float32, hd)
					sc := make([]float32, to)
					for ch := 0; ch < hd; ch++ {
						clear(q)
						q[ch] = oneHot
						if err := c.Scores(l, h, q, hd, 1, to, 1, sc, to, scratch); err != nil {
							t.Fatal(err)
						}
						for p := from; p < to; p++ {
							if got, want := k[(p-from)*d+h*hd+ch], sc[p]/oneHot; !close32(got, want) {
								t.Fatalf("%s: layer %d head %d position %d channel %d: ReadKV key %g, attention sees %g", spec, l, h, p, ch, got, want)
							}
						}
					}
					w, out := make([]float32, to), make([]float32, hd)
					for p := from; p < to; p++ {
						clear(w)
						w[p] = 1
						if err := c.WeightedSum(l, h, w, out, scratch); err != nil {
							t.Fatal(err)
						}
						for ch, want := range out {
							if got := v[(p-from)*d+h*hd+ch]; !close32(got, want) {
								t.Fatalf("%s: layer %d head %d position %d channel %d: ReadKV value %g, attention sees %g", spec, l, h, p, ch, got, want)
							}
						}
					}
				}
			}
			// Bad requests are errors, not panics.
			for _, rg := range [][2]int{{-1, 2}, {4, 3}, {0, n + 1}} {
				k, v := make([]float32, 0), make([]float32, 0)
				if err := r.ReadKV(l, rg[0], rg[1], k, v); err == nil {
					t.Errorf("%s: ReadKV [%d, %d) of %d: no error", spec, rg[0], rg[1], n)
				}
			}
			if err := r.ReadKV(l, 0, 2, make([]float32, d), make([]float32, 2*d)); err == nil {
				t.Errorf("%s: ReadKV with a short key buffer: no error", spec)
			}
		}
		if err := r.ReadKV(cfg.NLayers, 0, 1, nil, nil); err == nil {
			t.Errorf("%s: ReadKV of layer %d: no error", spec, cfg.NLayers)
		}
	}
}

// oneHot is the one-hot query's value: 127/128, so that a Q8_0-quantized
// query (scale value/127, binary16) is exact.
const oneHot = float32(127) / 128

// close32 reports whether a and b agree to float32 rounding of a few
// operations (the integer-dot paths quantize a one-hot query exactly).
func close32(a, b float32) bool {
	return math.Abs(float64(a)-float64(b)) <= 2e-5*(1+math.Abs(float64(b)))
}
