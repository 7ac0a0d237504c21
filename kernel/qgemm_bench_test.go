package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// BenchmarkQPrefill times n = 32 and 128 activations through MatMul on
// 2048×2048 and 8192×2048 (1B-shaped) and 2048×768 and 768×2048
// (134M-shaped) Q4_0 and Q8_0 weights, two threads, on the dequantize +
// float GEMM path ("dequant"), the per-token integer path ("int") and the
// tiled integer GEMM ("gemm", called directly, so also where MatMul does
// not route to it).
func BenchmarkQPrefill(b *testing.B) {
	for _, n := range []int{32, 128} {
		for _, dt := range []tensor.DType{tensor.Q4_0, tensor.Q8_0} {
			for _, sh := range [][2]int{{2048, 2048}, {8192, 2048}, {2048, 768}, {768, 2048}} {
				rows, cols := sh[0], sh[1]
				w := qBenchWeight(b, dt, rows, cols)
				x := randVec(rand.New(rand.NewPCG(1, 3)), n*cols)
				out := make([]float32, n*rows)
				for _, path := range []string{"dequant", "int", "gemm"} {
					b.Run(fmt.Sprintf("%s/%dx%d/n=%d/%s", dt, rows, cols, n, path), func(b *testing.B) {
						defer withConfig(func(c *Config) {
							c.Threads = 2
							c.QMaxBatch = qMaxN
							c.QGemmMin = 0
							switch path {
							case "int":
								c.QMaxBatch = 1 << 20
							case "gemm":
								c.QGemmMin = 1
							}
						})()
						b.ReportAllocs()
						b.SetBytes(int64(len(w.Data)))
						for b.Loop() {
							if err := MatMul(out, x, n, w); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			}
		}
	}
}
