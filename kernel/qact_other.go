//go:build !amd64 || purego

package kernel

import "github.com/terse-llm/terse/quant/ggml"

// quantQ8_K is ggml.QuantizeActQ8_K.
func quantQ8_K(_ level, a *q8Act, x []float32) { ggml.QuantizeActQ8_K(a, x) }
