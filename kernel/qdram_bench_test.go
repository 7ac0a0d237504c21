//go:build unix

package kernel

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// BenchmarkQDecodeDRAM is BenchmarkQTileMin on weights that do not fit in
// the last-level cache: each op multiplies by the next of eight 8192×2048
// matrices of one type (70-140 MB in all), as a decode step walks a
// model's layers, so the weights stream from memory. One thread; rows and
// tiles alternate so that a loaded machine slows both alike; tok/s counts
// activations.
func BenchmarkQDecodeDRAM(b *testing.B) {
	defer SetThreads(0)
	const rows, cols, nw = 8192, 2048, 8
	for _, dt := range []tensor.DType{tensor.Q8_0, tensor.Q4_0, tensor.Q5_0, tensor.IQ4_NL, tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.IQ4_XS} {
		if !gemm16For(active, dt).ok() {
			continue
		}
		// The weights are made only for the types the -bench pattern
		// selects (they take seconds).
		b.Run(dt.String(), func(b *testing.B) { benchQDecodeDRAM(b, dt, rows, cols, nw) })
	}
}

// benchQDecodeDRAM is BenchmarkQDecodeDRAM for one weight type and nw
// rows×cols matrices.
func benchQDecodeDRAM(b *testing.B, dt tensor.DType, rows, cols, nw int) {
	ws := make([]*tensor.Tensor, nw)
	for i := range ws {
		w, err := makeWeight(rand.New(rand.NewPCG(uint64(i), uint64(dt))), dt, rows, cols)
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = w
	}
	for _, n := range []int{1, 4, 8, 16} {
		x := randVec(rand.New(rand.NewPCG(1, uint64(n))), n*cols)
		out := make([]float32, n*rows)
		for _, route := range []string{"rows", "tiles"} {
			b.Run(fmt.Sprintf("n=%d/%s", n, route), func(b *testing.B) {
				defer withConfig(func(c *Config) {
					c.Threads, c.QTileMin = 1, 0
					if route == "tiles" {
						c.QTileMin = 1
					}
				})()
				b.SetBytes(int64(len(ws[0].Data)))
				i := 0
				c0 := cpuTime()
				for b.Loop() {
					if err := MatMul(out, x, n, ws[i%nw]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
				b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// cpuTime is the process's user+system CPU time in nanoseconds (0 where
// getrusage is unavailable).
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkQDecodePrefetch compares, in one process, the tiled decode of
// BenchmarkQDecodeDRAM's weights with the next band prefetched by the
// eight- and four-token kernels ("pf") and with ReadSum alone ("readsum"): each op
// runs one matrix both ways, in alternating order, and the CPU time of
// each way is reported per op (pf-cpu-ns/op, rs-cpu-ns/op), so a loaded
// machine slows both alike.
func BenchmarkQDecodePrefetch(b *testing.B) {
	defer SetThreads(0)
	const rows, cols, nw = 8192, 2048, 8
	for _, dt := range []tensor.DType{tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K} {
		if gemm16For(active, dt).x8pf == nil {
			continue
		}
		b.Run(dt.String(), func(b *testing.B) {
			ws := make([]*tensor.Tensor, nw)
			for i := range ws {
				w, err := makeWeight(rand.New(rand.NewPCG(uint64(i), uint64(dt))), dt, rows, cols)
				if err != nil {
					b.Fatal(err)
				}
				ws[i] = w
			}
			for _, n := range []int{4, 8, 16} {
				x := randVec(rand.New(rand.NewPCG(1, uint64(n))), n*cols)
				out := make([]float32, n*rows)
				b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
					defer withConfig(func(c *Config) { c.Threads, c.QTileMin = 1, 1 })()
					defer func() { noTilePrefetch = false }()
					var cpu [2]int64
					i := 0
					for b.Loop() {
						for k := 0; k < 2; k++ {
							v := (i + k) % 2
							noTilePrefetch = v == 1
							c0 := cpuTime()
							if err := MatMul(out, x, n, ws[i%nw]); err != nil {
								b.Fatal(err)
							}
							cpu[v] += cpuTime() - c0
						}
						i++
					}
					b.ReportMetric(float64(cpu[0])/float64(b.N), "pf-cpu-ns/op")
					b.ReportMetric(float64(cpu[1])/float64(b.N), "rs-cpu-ns/op")
				})
			}
		})
	}
}
