package kernel

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkQGemm16Types times n = 64 activations through MatMul on 2048×2048
// weights of every type with sixteen-row kernels, one thread, on the tiled
// GEMM ("tiles") and on the per-token integer path ("rows"), so each new
// type's tiles can be compared with the row kernels they replace; SetBytes
// counts weight bytes.
func BenchmarkQGemm16Types(b *testing.B) {
	const n, rows, cols = 64, 2048, 2048
	for _, dt := range gemm16TestTypes {
		if !gemm16For(supported, dt).ok() {
			b.Skipf("no sixteen-row %s kernels on this CPU", dt)
		}
		w := qBenchWeight(b, dt, rows, cols)
		x := randVec(rand.New(rand.NewPCG(1, 3)), n*cols)
		out := make([]float32, n*rows)
		for _, path := range []string{"tiles", "rows"} {
			b.Run(dt.String()+"/"+path, func(b *testing.B) {
				defer withConfig(func(c *Config) {
					c.Threads = 1
					c.QMaxBatch = 1 << 20 // the integer decode path
					c.QTileMin = 1        // tiles
					if path == "rows" {
						c.QTileMin = 0
					}
				})()
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
