package kernel

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

func BenchmarkDot(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{64, 128, 1536, 16384} {
		x, y := randVec(r, n), randVec(r, n)
		for _, l := range levels() {
			b.Run(fmt.Sprintf("n=%d/%v", n, l), func(b *testing.B) {
				b.SetBytes(int64(8 * n))
				var s float32
				for b.Loop() {
					s += dot(l, x, y)
				}
				b.ReportMetric(2*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				_ = s
			})
		}
	}
}

func BenchmarkAxpy(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 4096
	x, y := randVec(r, n), randVec(r, n)
	for _, l := range levels() {
		b.Run(l.String(), func(b *testing.B) {
			b.SetBytes(int64(12 * n))
			for b.Loop() {
				axpy(l, 1e-3, x, y)
			}
		})
	}
}

func BenchmarkF16ToF32Row(b *testing.B) {
	n := 4096
	src, dst := make([]byte, 2*n), make([]float32, n)
	for _, l := range levels() {
		b.Run(l.String(), func(b *testing.B) {
			b.SetBytes(int64(6 * n))
			for b.Loop() {
				f16ToF32(l, dst, src)
			}
		})
	}
}

// benchShapes are [rows, cols] of realistic projections.
var benchShapes = [][2]int{{512, 1536}, {1536, 512}}

func benchMatMul(b *testing.B, dt tensor.DType, ns []int) {
	r := rand.New(rand.NewPCG(2, 3))
	for _, sh := range benchShapes {
		rows, cols := sh[0], sh[1]
		w, err := makeWeight(r, dt, rows, cols)
		if err != nil {
			b.Fatal(err)
		}
		if ggml.Dequantize(dt, w.Row(0), make([]float32, cols)) != nil {
			b.Fatalf("ggml.Dequantize(%s) fails: every type the kernels take must dequantize", dt)
		}
		for _, n := range ns {
			x := randVec(r, n*cols)
			out := make([]float32, n*rows)
			run := func(b *testing.B, mm func() error) {
				b.ReportAllocs()
				b.SetBytes(int64(len(w.Data)))
				for b.Loop() {
					if err := mm(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(2*float64(n*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			}
			name := fmt.Sprintf("%dx%d/n=%d", rows, cols, n)
			b.Run(name+"/naive", func(b *testing.B) {
				run(b, func() error { return naiveMatMul(out, x, n, w) })
			})
			for _, l := range levels() {
				b.Run(fmt.Sprintf("%s/%v", name, l), func(b *testing.B) {
					withLevel(b, l, func() {
						run(b, func() error { return MatMul(out, x, n, w) })
					})
				})
			}
		}
	}
}

func BenchmarkMatMulF32_Decode(b *testing.B)   { benchMatMul(b, tensor.F32, []int{1}) }
func BenchmarkMatMulF16_Decode(b *testing.B)   { benchMatMul(b, tensor.F16, []int{1}) }
func BenchmarkMatMulBF16_Decode(b *testing.B)  { benchMatMul(b, tensor.BF16, []int{1}) }
func BenchmarkMatMulQ8_0_Decode(b *testing.B)  { benchMatMul(b, tensor.Q8_0, []int{1}) }
func BenchmarkMatMulF32_Prefill(b *testing.B)  { benchMatMul(b, tensor.F32, []int{64, 512}) }
func BenchmarkMatMulF16_Prefill(b *testing.B)  { benchMatMul(b, tensor.F16, []int{64, 512}) }
func BenchmarkMatMulBF16_Prefill(b *testing.B) { benchMatMul(b, tensor.BF16, []int{64, 512}) }
func BenchmarkMatMulQ8_0_Prefill(b *testing.B) { benchMatMul(b, tensor.Q8_0, []int{64, 512}) }

// naiveMatMul is the placeholder this package started from, kept as the
// benchmark baseline: a goroutine per chunk, a fresh row buffer per chunk,
// ggml.Dequantize for every type and a scalar dot per (row, token).
func naiveMatMul(out, x []float32, n int, w *tensor.Tensor) error {
	rows, cols := w.Rows(), w.Cols()
	var firstErr error
	t := min(Threads(), rows)
	var wg sync.WaitGroup
	chunk := (rows + t - 1) / t
	for lo := 0; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]float32, cols)
			for r := lo; r < hi; r++ {
				if err := ggml.Dequantize(w.DType, w.Row(r), buf); err != nil {
					firstErr = err
					return
				}
				for tk := 0; tk < n; tk++ {
					var s float32
					for i, v := range buf {
						s += v * x[tk*cols+i]
					}
					out[tk*rows+r] = s
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
