package kernel

import (
	"fmt"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Dot returns the float32 dot product of a and b (len(b) >= len(a)).
func Dot(a, b []float32) float32 {
	var s float32
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// MatMul computes out[t*rows+r] = dot(x[t*cols:(t+1)*cols], row r of w) for
// t in [0, n): x holds n activation vectors of length w.Cols(), out n vectors
// of length w.Rows(). w stays in its stored type.
func MatMul(out, x []float32, n int, w *tensor.Tensor) error {
	rows, cols := w.Rows(), w.Cols()
	if len(x) < n*cols || len(out) < n*rows {
		return fmt.Errorf("matmul %q: %d×%d weight with %d inputs: buffers too small", w.Name, rows, cols, n)
	}
	var firstErr error
	Parallel(rows, func(lo, hi int) {
		buf := make([]float32, cols)
		for r := lo; r < hi; r++ {
			if err := ggml.Dequantize(w.DType, w.Row(r), buf); err != nil {
				firstErr = fmt.Errorf("matmul %q: %w", w.Name, err)
				return
			}
			for t := 0; t < n; t++ {
				out[t*rows+r] = Dot(buf, x[t*cols:(t+1)*cols])
			}
		}
	})
	return firstErr
}
