//go:build !amd64 || purego

package kernel

import "github.com/terse-llm/terse/tensor"

// gemm16For returns no kernels: there are no sixteen-row micro-kernels here.
func gemm16For(level, tensor.DType) gemm16Kernels { return gemm16Kernels{} }

// gemm16AMX returns k: there are no AMX kernels here.
func gemm16AMX(k gemm16Kernels, _ tensor.DType) gemm16Kernels { return k }
