package kv

import (
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/kernel"
)

// TestAttentionAllocs checks that one decode step's attention for one
// query head (Scores, softmax, WeightedSum) allocates nothing for the
// caches the engine calls once per layer and query head at every token:
// an allocation there is one per head per layer per token.
func TestAttentionAllocs(t *testing.T) {
	const n = 100
	for _, spec := range []string{"f16", "q8_0", "q4_0", "q4_1", "kivi:k4v4", "rq", "rq:k4.375", "rq:k3:m:s4"} {
		t.Run(spec, func(t *testing.T) {
			sp, err := Parse(spec)
			if err != nil {
				t.Fatal(err)
			}
			c, err := sp.New(&testCfg, n)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			ks, vs := kvRows(rng, n, testCfg.KVDim(0))
			for p := 0; p < n; p++ {
				for l := 0; l < testCfg.NLayers; l++ {
					if err := c.Append(l, ks[p], vs[p]); err != nil {
						t.Fatal(err)
					}
				}
			}
			q := make([]float32, testCfg.HeadDim)
			for i := range q {
				q[i] = float32(rng.NormFloat64())
			}
			sc, out := make([]float32, n), make([]float32, testCfg.HeadDim)
			scratch := make([]float32, c.ScratchSize())
			var failed error
			allocs := testing.AllocsPerRun(20, func() {
				if err := c.Scores(0, 1, q, len(q), 1, n, 0.125, sc, n, scratch); err != nil {
					failed = err
				}
				kernel.Softmax(sc)
				if err := c.WeightedSum(0, 1, sc, out, scratch); err != nil {
					failed = err
				}
			})
			if failed != nil {
				t.Fatal(failed)
			}
			if allocs != 0 {
				t.Errorf("%g allocations per Scores and WeightedSum, want 0", allocs)
			}
		})
	}
}
