//go:build !amd64 || purego

package kernel

import "github.com/terse-llm/terse/tensor"

// gemm4For returns nil: there are no four-token micro-kernels here.
func gemm4For(level, tensor.DType) gemm4Fn { return nil }
