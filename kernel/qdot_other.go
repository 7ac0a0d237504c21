//go:build !amd64 || purego

package kernel

import "github.com/terse-llm/terse/tensor"

// qdotFor returns the row kernel for weights of type dt at level l: the
// generic one on this platform.
func qdotFor(_ level, _ tensor.DType, generic qdotFn) qdotFn { return generic }
