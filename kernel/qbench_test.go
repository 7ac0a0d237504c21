package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// qBenchShapes are [rows, cols] of decode projections: the small test model
// (512×1536, 1536×512), a 4096×512 block, a 134M Llama FFN (2048×768) and
// its 32000×768 output head.
var qBenchShapes = [][2]int{{512, 1536}, {1536, 512}, {4096, 512}, {2048, 768}, {32000, 768}}

var qBenchWeights = map[string]*tensor.Tensor{}

func qBenchWeight(b *testing.B, dt tensor.DType, rows, cols int) *tensor.Tensor {
	key := fmt.Sprintf("%s/%dx%d", dt, rows, cols)
	if w := qBenchWeights[key]; w != nil {
		return w
	}
	w, err := makeWeight(rand.New(rand.NewPCG(uint64(rows), uint64(cols))), dt, rows, cols)
	if err != nil {
		b.Fatal(err)
	}
	qBenchWeights[key] = w
	return w
}

// BenchmarkQMatMulDecode compares, for n = 1, the dequantize path
// ("dequant") with the integer path at each kernel level; GB/s counts weight
// bytes. TERSE_QBENCH_THREADS-style sweeps: sub-benchmarks t=1 and t=2.
func BenchmarkQMatMulDecode(b *testing.B) {
	defer SetThreads(0)
	for _, dt := range []tensor.DType{tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q6_K} {
		for _, sh := range qBenchShapes {
			rows, cols := sh[0], sh[1]
			w := qBenchWeight(b, dt, rows, cols)
			x := randVec(rand.New(rand.NewPCG(1, 1)), cols)
			out := make([]float32, rows)
			for _, th := range []int{1, 2} {
				run := func(b *testing.B, l level, q bool) {
					SetThreads(th)
					withLevel(b, l, func() {
						withQ(q, func() {
							b.ReportAllocs()
							b.SetBytes(int64(len(w.Data)))
							for b.Loop() {
								if err := MatMul(out, x, 1, w); err != nil {
									b.Fatal(err)
								}
							}
						})
					})
				}
				name := fmt.Sprintf("%s/%dx%d/t=%d", dt, rows, cols, th)
				b.Run(name+"/dequant", func(b *testing.B) { run(b, active, false) })
				for _, l := range levels() {
					b.Run(fmt.Sprintf("%s/int-%v", name, l), func(b *testing.B) { run(b, l, true) })
				}
			}
		}
	}
}

// BenchmarkQMatMulCrossover times n = 1..24 activations on both paths, one
// thread, to place Config.QMaxBatch.
func BenchmarkQMatMulCrossover(b *testing.B) {
	defer withConfig(func(c *Config) { c.Threads, c.QMaxBatch = 1, 64 })()
	rows, cols := 2048, 768
	for _, dt := range []tensor.DType{tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q6_K} {
		w := qBenchWeight(b, dt, rows, cols)
		for _, n := range []int{1, 2, 4, 8, 12, 16, 24} {
			x := randVec(rand.New(rand.NewPCG(1, 2)), n*cols)
			out := make([]float32, n*rows)
			for _, q := range []bool{false, true} {
				path := "dequant"
				if q {
					path = "int"
				}
				b.Run(fmt.Sprintf("%s/n=%d/%s", dt, n, path), func(b *testing.B) {
					withQ(q, func() {
						b.SetBytes(int64(len(w.Data)))
						for b.Loop() {
							if err := MatMul(out, x, n, w); err != nil {
								b.Fatal(err)
							}
						}
					})
				})
			}
		}
	}
}
