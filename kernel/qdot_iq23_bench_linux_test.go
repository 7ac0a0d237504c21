package kernel

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// BenchmarkIQ23DotCPU times the lattice types' and TQ2_0's integer path at each
// level (generic: the reference dot) and the dequantize path ("dequant",
// QDisabled) on a one-token decode MatMul of a 1024×4096 weight, one
// thread, and reports the thread's CPU time per call (cpu-µs/op) beside
// the wall time: the machine may be shared.
func BenchmarkIQ23DotCPU(b *testing.B) {
	const rows, cols = 1024, 4096
	r := rand.New(rand.NewPCG(5, 6))
	for _, dt := range []tensor.DType{tensor.IQ3_XXS, tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ3_S, tensor.IQ2_S, tensor.TQ2_0, tensor.IQ1_S, tensor.IQ1_M, tensor.TQ1_0} {
		w, err := tensor.New("w", dt, []int{rows, cols}, randBlocks(r, dt, rows*cols/dt.BlockSize(), qBenchMode))
		if err != nil {
			b.Fatal(err)
		}
		x := randVec(r, cols)
		out := make([]float32, rows)
		type route struct {
			name string
			l    level
			off  bool
		}
		routes := []route{{"dequant", supported, true}}
		for _, l := range levels() {
			routes = append(routes, route{l.String(), l, false})
		}
		for _, rt := range routes {
			b.Run(fmt.Sprintf("%dx%d/%s/%s", rows, cols, dt, rt.name), func(b *testing.B) {
				defer withConfig(func(c *Config) { c.Threads, c.QTileMin, c.QDisabled = 1, 0, rt.off })()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				withLevel(b, rt.l, func() {
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
