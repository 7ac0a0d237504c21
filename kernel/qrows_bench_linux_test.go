package kernel

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/terse-llm/terse/tensor"
)

// threadCPU returns the calling thread's user + system CPU time.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkQRowsCPU times a one-token decode MatMul on the row kernels
// (QTileMin 0, one thread) of an 8192×2048 and a 32×2048 weight of each
// type with a sixteen-row kernel, at each level from AVX2 up, and reports the
// thread's CPU time per call (cpu-µs/op) beside the wall time: on a
// machine shared with other busy processes the CPU time moves less.
func BenchmarkQRowsCPU(b *testing.B) {
	for _, sh := range [][2]int{{8192, 2048}, {32, 2048}} {
		benchQRowsCPU(b, sh[0], sh[1])
	}
}

// benchQRowsCPU is BenchmarkQRowsCPU for one weight shape (32×2048: in
// L2, the kernels' compute alone).
func benchQRowsCPU(b *testing.B, rows, cols int) {
	for _, dt := range []tensor.DType{tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q6_K, tensor.IQ4_XS} {
		w := qBenchWeight(b, dt, rows, cols)
		x := randVec(rand.New(rand.NewPCG(1, 1)), cols)
		out := make([]float32, rows)
		for _, l := range levels() {
			if l < levelAVX2 {
				continue
			}
			b.Run(fmt.Sprintf("%dx%d/%s/%v", rows, cols, dt, l), func(b *testing.B) {
				defer withConfig(func(c *Config) { c.Threads, c.QTileMin, c.QDisabled = 1, 0, false })()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				withLevel(b, l, func() {
					b.SetBytes(int64(len(w.Data)))
					c0 := threadCPU(b)
					for b.Loop() {
						if err := MatMul(out, x, 1, w); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64((threadCPU(b)-c0).Microseconds())/float64(b.N), "cpu-µs/op")
				})
			})
		}
	}
}
