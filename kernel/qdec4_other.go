//go:build !amd64 || purego

package kernel

import "github.com/terse-llm/terse/tensor"

func dec4For(level, tensor.DType) dec4Fn { return nil }
