//go:build amd64 && !purego

package kernel

import "github.com/terse-llm/terse/tensor"

// Implemented in qdec4_amd64.s.

//go:noescape
func dec4Q8_0VNNI(out []float32, rows, ostride int, w []byte, rb int, q []int8, e []float32, l []int32, stride, nb int)

//go:noescape
func dec4Q4_0VNNI(out []float32, rows, ostride int, w []byte, rb int, q []int8, e []float32, l []int32, stride, nb int)

// dec4For returns the four-token decode kernel for dt weights at level l,
// or nil where there is none.
func dec4For(l level, dt tensor.DType) dec4Fn {
	if l >= levelAVX512 && hasVNNI {
		switch dt {
		case tensor.Q4_0:
			return dec4Q4_0VNNI
		case tensor.Q8_0:
			return dec4Q8_0VNNI
		}
	}
	return nil
}
