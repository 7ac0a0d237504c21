//go:build amd64 && !purego

package kernel

import "github.com/terse-llm/terse/tensor"

// Row dots for TQ2_0 and TQ1_0 (qdot_tq_amd64.s): AVX2, and equal to the
// reference dots of quant/ggml (dotTQ2, dotTQ1) bit for bit for every
// int8 activation: the
// integer block sums are exact and the float32 operations are the
// reference's, in its order. The block count is len(d).

//go:noescape
func dotTQ2AVX2(w []byte, q []int8, d []float32) float32

//go:noescape
func dotTQ1AVX2(w []byte, q []int8, d []float32) float32

func dotTQ1AVX2Row(w []byte, a *q8Act) float32 { return dotTQ1AVX2(w, a.Q, a.D) }

func dotTQ2AVX2Row(w []byte, a *q8Act) float32 { return dotTQ2AVX2(w, a.Q, a.D) }

// init registers the AVX2 row dots of TQ2_0 and TQ1_0.
func init() {
	registerQKernel(tensor.TQ1_0, qKernel{min: levelAVX2, dot: dotTQ1AVX2Row})
	registerQKernel(tensor.TQ2_0, qKernel{min: levelAVX2, dot: dotTQ2AVX2Row})
}
