package kv

import (
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
)

// BenchmarkAttention is one decode step's attention for one KV head at a
// context of 1024: scores for one query, softmax, weighted sum.
func BenchmarkAttention(b *testing.B) {
	const n = 1024
	for _, spec := range []string{"f32", "f16", "q8_0", "q4_0", "kivi:k4v4", "kivi:k2v2", "rq", "rq:k4", "rq:k4.375", "rq:k8"} {
		b.Run(spec, func(b *testing.B) {
			sp, _ := Parse(spec)
			c, err := sp.New(&testCfg, n)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(7, 8))
			ks, vs := kvRows(rng, n, testCfg.KVDim(0))
			for p := 0; p < n; p++ {
				for l := 0; l < testCfg.NLayers; l++ {
					c.Append(l, ks[p], vs[p])
				}
			}
			var cache model.KVCache = c
			q := make([]float32, testCfg.HeadDim)
			for i := range q {
				q[i] = float32(rng.NormFloat64())
			}
			sc, out := make([]float32, n), make([]float32, testCfg.HeadDim)
			scratch := make([]float32, c.ScratchSize())
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := cache.Scores(0, 1, q, 64, 1, n, 0.125, sc, n, scratch); err != nil {
					b.Fatal(err)
				}
				kernel.Softmax(sc)
				if err := cache.WeightedSum(0, 1, sc, out, scratch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
