//go:build unix

package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// BenchmarkQGemm16Group times the sixteen-row kernels alone on one band
// (gemm16Band tiles, 2048 columns) of repacked weights, already in cache,
// for eight tokens taken in groups of g (eight ones, two fours or one
// eight), so the kernels of each group size can be compared on the same
// work; the repacking is not timed. An op is one band times eight tokens;
// cpu-ns/op is the process's CPU time per op (the machine may be shared).
func BenchmarkQGemm16Group(b *testing.B) {
	const cols, n = 2048, 8
	rows := 16 * gemm16Band
	for _, dt := range []tensor.DType{tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q8_0, tensor.Q4_0, tensor.IQ4_XS, tensor.Q2_K, tensor.Q3_K, tensor.Q4_1, tensor.Q5_1, tensor.Q5_0, tensor.IQ4_NL} {
		k := gemm16For(supported, dt)
		if !k.ok() {
			continue
		}
		r := rand.New(rand.NewPCG(7, uint64(dt)))
		nb := cols / k.blk
		rb, _ := dt.RowBytes(cols)
		data := randBlocks(r, dt, rows*nb, 0)
		pk := make([]byte, gemm16Band*nb*k.tile)
		for i := 0; i < gemm16Band; i++ {
			k.pack(pk[i*nb*k.tile:(i+1)*nb*k.tile], data[16*i*rb:], rb, nb)
		}
		w, err := tensor.New("w", dt, []int{rows, cols}, data)
		if err != nil {
			b.Fatal(err)
		}
		j := new(qJob)
		j.setup([][]float32{make([]float32, n*rows)}, randVec(r, n*cols), n, []*tensor.Tensor{w})
		j.gemm16, j.dt16 = k, dt
		out := make([]float32, n*rows)
		for _, g := range []int{1, 4, 8} {
			kern := k.kernel(g)
			if kern == nil {
				continue
			}
			var groups []gemm16Group
			for t := 0; t < n; t += g {
				off := t * nb * k.actBlock
				groups = append(groups, gemm16Group{t, g, off, g})
			}
			j.abuf = make([]byte, n*nb*k.actBlock)
			j.interleave(groups)
			b.Run(fmt.Sprintf("%s/x%d", dt, g), func(b *testing.B) {
				c0 := cpuTime()
				for b.Loop() {
					for _, gr := range groups {
						for i := 0; i < gemm16Band; i++ {
							kern(out[gr.t*rows+16*i:], rows, pk[i*nb*k.tile:(i+1)*nb*k.tile], nb, j.abuf[gr.off:])
						}
					}
				}
				b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// BenchmarkQGemm16Pack times the AVX-512 repacking of one band (gemm16Band
// tiles of 2048 columns) whose rows are in cache.
func BenchmarkQGemm16Pack(b *testing.B) {
	const cols = 2048
	rows := 16 * gemm16Band
	for _, dt := range []tensor.DType{tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q8_0, tensor.Q4_0, tensor.IQ4_XS, tensor.Q2_K, tensor.Q3_K, tensor.Q4_1, tensor.Q5_1, tensor.Q5_0, tensor.IQ4_NL} {
		k := gemm16For(supported, dt)
		if !k.ok() {
			continue
		}
		r := rand.New(rand.NewPCG(7, uint64(dt)))
		nb := cols / k.blk
		rb, _ := dt.RowBytes(cols)
		data := randBlocks(r, dt, rows*nb, 0)
		pk := make([]byte, gemm16Band*nb*k.tile)
		b.Run(dt.String(), func(b *testing.B) {
			c0 := cpuTime()
			for b.Loop() {
				for i := 0; i < gemm16Band; i++ {
					k.pack(pk[i*nb*k.tile:(i+1)*nb*k.tile], data[16*i*rb:], rb, nb)
				}
			}
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}
