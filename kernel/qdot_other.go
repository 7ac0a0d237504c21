//go:build !amd64 || purego

package kernel

import "github.com/terse-llm/terse/tensor"

// qdotFor returns the row kernel for weights of type dt at level l: the
// generic one on this platform.
func qdotFor(_ level, _ tensor.DType, generic qdotFn) qdotFn { return generic }

func quantQ8_0(_ level, a *q8Act, x []float32) { quantizeQ8_0(a, x) }

func dequantRow(level, tensor.DType, []float32, []byte) bool { return false }

func qrowsFor(level, tensor.DType) qrowsFn { return nil }
