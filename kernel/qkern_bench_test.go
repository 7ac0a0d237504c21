package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// BenchmarkQDotRow times one row kernel on an in-cache 4096-column row
// (weight bytes per second): the compute ceiling of each kernel.
func BenchmarkQDotRow(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	cols := 4096
	for _, dt := range []tensor.DType{tensor.Q8_0, tensor.Q4_0, tensor.Q4_1, tensor.Q4_K, tensor.Q6_K} {
		qt, _ := qTypeOf(dt)
		w := randBlocks(r, dt, cols/dt.BlockSize(), qBenchMode)
		a := randAct(r, qt.act, cols, 0)
		for _, l := range levels() {
			f := qdotFor(l, dt, qt.generic)
			b.Run(fmt.Sprintf("%s/%v", dt, l), func(b *testing.B) {
				b.SetBytes(int64(len(w)))
				var s float32
				for b.Loop() {
					s += f(w, a)
				}
				_ = s
			})
		}
	}
}

// qBenchMode is the randBlocks mode of the benchmarked rows (1: binary16
// scales drawn from a normal distribution, as real weights have).
var qBenchMode = 1
