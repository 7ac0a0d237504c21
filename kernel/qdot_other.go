//go:build !amd64 || purego

package kernel

import "github.com/terse-llm/terse/quant/ggml"

// quantQ8_0 is ggml.QuantizeActQ8_0: this platform registers no SIMD
// kernels.
func quantQ8_0(_ level, a *q8Act, x []float32) { ggml.QuantizeActQ8_0(a, x) }
