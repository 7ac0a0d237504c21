package kernel

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkHalfMatMul compares the fused F16/BF16 route (hgemm.go) with
// the widening one at the level in use, one thread, on a weight larger
// than the last-level cache (decode reads it from memory) and an FFN-down
// shape, alternating the two routes inside each size. It reports the
// thread's CPU time per call (cpu-µs/op) beside the wall time: on a
// machine shared with other busy processes the CPU time moves less.
func BenchmarkHalfMatMul(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	defer withConfig(func(c *Config) { c.Threads = 1 })()
	for _, dt := range halfTypes {
		for _, sh := range [][2]int{{16384, 2048}, {2048, 8192}, {1536, 512}, {512, 1536}} {
			rows, cols := sh[0], sh[1]
			w, err := makeWeight(r, dt, rows, cols)
			if err != nil {
				b.Fatal(err)
			}
			for _, n := range []int{1, 4, 8, 16, 64} {
				x := randVec(r, n*cols)
				out := make([]float32, n*rows)
				for _, route := range []struct {
					name  string
					fused bool
				}{{"fused", true}, {"widen", false}} {
					b.Run(fmt.Sprintf("%s/%dx%d/n=%d/%s", dt, rows, cols, n, route.name), func(b *testing.B) {
						old := halfRoute
						halfRoute = route.fused
						defer func() { halfRoute = old }()
						runtime.LockOSThread()
						defer runtime.UnlockOSThread()
						b.SetBytes(int64(len(w.Data)))
						c0 := threadCPU(b)
						for b.Loop() {
							if err := MatMul(out, x, n, w); err != nil {
								b.Fatal(err)
							}
						}
						cpu := threadCPU(b) - c0
						b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
						b.ReportMetric(2*float64(n*rows*cols)*float64(b.N)/cpu.Seconds()/1e9, "cpu-GFLOP/s")
					})
				}
			}
		}
	}
}
