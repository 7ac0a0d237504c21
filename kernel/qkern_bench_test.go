package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkQDotRow times one row kernel on an in-cache 4096-column row
// (weight bytes per second): the compute ceiling of each kernel, for every
// registered type with an integer path at every level.
func BenchmarkQDotRow(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	cols := 4096
	for _, dt := range qTestTypes {
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
