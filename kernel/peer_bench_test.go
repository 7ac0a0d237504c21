package kernel

import (
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// BenchmarkPeerMatVec is the matrix-vector product that llama.cpp's
// test-backend-ops times in its perf mode (MUL_MAT, m=4096, n=1,
// k=14336, float32 activations), for every weight type both have, on two
// threads, so that the two can be compared kernel by kernel:
//
//	test-backend-ops perf -o MUL_MAT -b CPU
//	go test ./kernel -run '^$' -bench BenchmarkPeerMatVec
//
// The weights (15-117 MB) are the same on every call, as there, so on a
// CPU with a large last-level cache (32 MB on the Zen 3 this was written
// on) the smaller types partly stay in it: compare the two programs on one
// machine, not these times with another's.
func BenchmarkPeerMatVec(b *testing.B) {
	defer SetThreads(0)
	SetThreads(2)
	const rows, cols = 4096, 14336
	for _, dt := range []tensor.DType{
		tensor.F16, tensor.BF16, tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0,
		tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K,
		tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ2_S, tensor.IQ3_XXS, tensor.IQ3_S,
		tensor.IQ1_S, tensor.IQ1_M, tensor.IQ4_NL, tensor.IQ4_XS,
	} {
		b.Run(dt.String(), func(b *testing.B) {
			w, err := makeWeight(rand.New(rand.NewPCG(1, uint64(dt))), dt, rows, cols)
			if err != nil {
				b.Fatal(err)
			}
			x := randVec(rand.New(rand.NewPCG(2, 3)), cols)
			out := make([]float32, rows)
			b.SetBytes(int64(len(w.Data)))
			for b.Loop() {
				if err := MatMul(out, x, 1, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
