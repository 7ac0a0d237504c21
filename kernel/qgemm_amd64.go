//go:build amd64 && !purego

package kernel

import "github.com/terse-llm/terse/tensor"

// Implemented in qgemm_amd64.s.

//go:noescape
func gemm4Q8_0VNNI(out []float32, rows, ostride int, w []byte, rb int, q []int8, qstride int, d, s []float32, dstride, nb int)

//go:noescape
func gemm4Q4_0VNNI(out []float32, rows, ostride int, w []byte, rb int, q []int8, qstride int, d, s []float32, dstride, nb int)

// gemm4For returns the four-token micro-kernel for dt weights at level l,
// or nil where there is none.
func gemm4For(l level, dt tensor.DType) gemm4Fn {
	if l >= levelAVX512 && hasVNNI {
		switch dt {
		case tensor.Q4_0:
			return gemm4Q4_0VNNI
		case tensor.Q8_0:
			return gemm4Q8_0VNNI
		}
	}
	return nil
}
