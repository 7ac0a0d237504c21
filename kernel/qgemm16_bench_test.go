package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkQGemm16Types times n = 1, 4 and 64 activations through MatMul
// on 2048×2048 weights of every type with sixteen-row kernels, one thread,
// on the tiles ("tiles") and on the row kernels ("rows"), so each type's
// tiles can be compared with the row kernels they replace (QTileMin);
// SetBytes counts weight bytes.
func BenchmarkQGemm16Types(b *testing.B) {
	const rows, cols = 2048, 2048
	for _, dt := range gemm16TestTypes {
		if !gemm16For(supported, dt).ok() {
			b.Logf("no sixteen-row %s kernels on this CPU", dt)
			continue
		}
		w := qBenchWeight(b, dt, rows, cols)
		for _, n := range []int{1, 4, 64} {
			x := randVec(rand.New(rand.NewPCG(1, 3)), n*cols)
			out := make([]float32, n*rows)
			for _, path := range []string{"tiles", "rows"} {
				b.Run(fmt.Sprintf("%s/n=%d/%s", dt, n, path), func(b *testing.B) {
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
}

// BenchmarkQGemmPrefill times a 64-token prefill MatMul on 2048×2048
// weights of every type with sixteen-row kernels, one thread, on the
// integer GEMM ("int": qGemm, the route of batches above QMaxBatch, Go
// repacking included) and on the dequantize + float GEMM path it replaces
// where a type has no kernels ("float"), in GMAC/s.
func BenchmarkQGemmPrefill(b *testing.B) {
	const rows, cols, n = 2048, 2048, 64
	for _, dt := range gemm16TestTypes {
		if !gemm16For(supported, dt).ok() {
			b.Logf("no sixteen-row %s kernels on this CPU", dt)
			continue
		}
		w := qBenchWeight(b, dt, rows, cols)
		x := randVec(rand.New(rand.NewPCG(1, 3)), n*cols)
		out := make([]float32, n*rows)
		for _, path := range []string{"int", "float"} {
			b.Run(fmt.Sprintf("%s/%s", dt, path), func(b *testing.B) {
				defer withConfig(func(c *Config) {
					c.Threads = 1
					c.QMaxBatch = n / 2
					c.QGemmMin = n / 2
					c.QDisabled = path == "float"
				})()
				for b.Loop() {
					if err := MatMul(out, x, n, w); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(rows*cols*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	}
}
