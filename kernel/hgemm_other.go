//go:build !amd64 || purego

package kernel

import "github.com/terse-llm/terse/tensor"

// halfFused reports whether MatMul uses the fused half kernels: never
// without the AVX-512 assembly.
func halfFused(level, tensor.DType) bool { return false }

func halfNR(level) int { return 4 }

func halfX1(level) bool { return false }

func halfMicro(_ level, _ tensor.DType, _ int, _ *[4]*byte, _ *[4]*float32, _ int, _ *[16]float32) {
	panic("kernel: no fused half kernels on this platform")
}
