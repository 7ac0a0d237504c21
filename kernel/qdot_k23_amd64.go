//go:build amd64 && !purego

package kernel

import "github.com/terse-llm/terse/tensor"

// Row dots for Q2_K and Q3_K (qdot_k23_amd64.s): AVX2, and equal to the
// reference dots of quant/ggml bit for bit (the integer block sums are
// exact and the float32 operations are the reference's, in its order).
// Arguments as in qdot_k_amd64.go: the block count is len(d), q holds 256
// quants per block and bs 16 sums per block.

//go:noescape
func dotQ2KAVX2(w []byte, q []int8, d []float32, bs []int16) float32

//go:noescape
func dotQ3KAVX2(w []byte, q []int8, d []float32, bs []int16) float32

func dotQ2KAVX2Row(w []byte, a *q8Act) float32 { return dotQ2KAVX2(w, a.Q, a.D, a.BS) }
func dotQ3KAVX2Row(w []byte, a *q8Act) float32 { return dotQ3KAVX2(w, a.Q, a.D, a.BS) }

// init registers the AVX2 row dots of Q2_K and Q3_K.
func init() {
	registerQKernel(tensor.Q2_K, qKernel{min: levelAVX2, dot: dotQ2KAVX2Row})
	registerQKernel(tensor.Q3_K, qKernel{min: levelAVX2, dot: dotQ3KAVX2Row})
}
