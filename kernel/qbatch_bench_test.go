package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// BenchmarkQMatMulBatch measures the decode path on a Llama-3.2-1B FFN
// projection (8192×2048) for n = 1, 4, 8 and 16 activations (batched
// decode of n sequences) on one thread; tok/s counts activations. Batched
// decode pays when n activations cost much less than n single ones.
func BenchmarkQMatMulBatch(b *testing.B) {
	defer SetThreads(0)
	const rows, cols = 8192, 2048
	for _, dt := range []tensor.DType{tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q6_K} {
		w := qBenchWeight(b, dt, rows, cols)
		for _, n := range []int{1, 4, 8, 16} {
			x := randVec(rand.New(rand.NewPCG(1, uint64(n))), n*cols)
			out := make([]float32, n*rows)
			b.Run(fmt.Sprintf("%s/n=%d", dt, n), func(b *testing.B) {
				SetThreads(1)
				b.SetBytes(int64(len(w.Data)))
				for b.Loop() {
					if err := MatMul(out, x, n, w); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}

// BenchmarkQTileMin places Config.QTileMin: the decode path on the same
// 8192×2048 projection, one thread, for n = 1, 2, 3, 4, 8 and 16 tokens,
// row by row ("rows": the row and four-token kernels) and through the
// sixteen-row tiles ("tiles"), alternating, so that a loaded machine
// slows both alike; tok/s counts activations.
func BenchmarkQTileMin(b *testing.B) {
	defer SetThreads(0)
	const rows, cols = 8192, 2048
	for _, dt := range []tensor.DType{tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q6_K} {
		if !gemm16For(active, dt).ok() {
			b.Skipf("no sixteen-row %s kernels at level %v", dt, active)
		}
		w := qBenchWeight(b, dt, rows, cols)
		for _, n := range []int{1, 2, 3, 4, 8, 16} {
			x := randVec(rand.New(rand.NewPCG(1, uint64(n))), n*cols)
			out := make([]float32, n*rows)
			for _, route := range []string{"rows", "tiles"} {
				b.Run(fmt.Sprintf("%s/n=%d/%s", dt, n, route), func(b *testing.B) {
					defer withConfig(func(c *Config) {
						c.Threads, c.QTileMin = 1, 0
						if route == "tiles" {
							c.QTileMin = 1
						}
					})()
					b.SetBytes(int64(len(w.Data)))
					for b.Loop() {
						if err := MatMul(out, x, n, w); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
				})
			}
		}
	}
}
