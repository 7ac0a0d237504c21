package compress

import (
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/tensor"
)

// BenchmarkGPTQMatrix times GPTQ on one BF16 matrix of a 1B model's shapes
// to Q4_K (factor and rows), with a Hessian XᵀX + I of 64 random samples.
func BenchmarkGPTQMatrix(b *testing.B) {
	for _, sh := range []struct {
		name       string
		rows, cols int
	}{{"down-2048x8192", 2048, 8192}, {"up-8192x2048", 8192, 2048}} {
		b.Run(sh.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, uint64(sh.cols)))
			const k = 64
			x := make([]float64, k*sh.cols)
			for i := range x {
				x[i] = r.NormFloat64()
			}
			xt := make([]float64, sh.cols*k)
			for t := 0; t < k; t++ {
				for j := 0; j < sh.cols; j++ {
					xt[j*k+t] = x[t*sh.cols+j]
				}
			}
			h := make([]float64, sh.cols*sh.cols)
			if err := kernel.F64MulAdd(h, sh.cols, xt, k, x, sh.cols, sh.cols, sh.cols, k, false); err != nil {
				b.Fatal(err)
			}
			for j := 0; j < sh.cols; j++ {
				h[j*sh.cols+j] += 1
			}
			w := make([]float32, sh.rows*sh.cols)
			for i := range w {
				w[i] = float32(r.NormFloat64() * 0.02)
			}
			t := tensor.FromFloat32("blk.0.ffn_down.weight", []int{sh.rows, sh.cols}, w)
			st := &quant.Stats{Hessian: h, Samples: k}
			for b.Loop() {
				if _, err := (GPTQ{Damp: 0.1}).Compress(t, tensor.Q4_K, st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
