//go:build amd64 && !purego

package kernel

import "github.com/terse-llm/terse/quant/ggml"

// Implemented in qact_amd64.s.

//go:noescape
func quantQ8_KAVX512(q []int8, d []float32, bs []int16, x []float32)

//go:noescape
func quantQ8_KAVX2(q []int8, d []float32, bs []int16, x []float32)

// quantQ8_K is ggml.QuantizeActQ8_K at level l (bit for bit).
func quantQ8_K(l level, a *q8Act, x []float32) {
	if nb := len(a.D); l >= levelAVX2 && nb > 0 {
		_ = a.Q[nb*qkBlock-1]
		_ = a.BS[nb*16-1]
		if l >= levelAVX512 {
			quantQ8_KAVX512(a.Q, a.D, a.BS, x[:nb*qkBlock])
		} else {
			quantQ8_KAVX2(a.Q, a.D, a.BS, x[:nb*qkBlock])
		}
		return
	}
	ggml.QuantizeActQ8_K(a, x)
}
