// Package quant is the root of terse's weight-compression tree. It holds the
// one interface every weight quantizer implements and the calibration
// statistics a quantizer may use; each method lives in its own subpackage
// with its math in its doc comment:
//
//   - quant/rtn: round-to-nearest onto a uniform grid, symmetric or
//     asymmetric, per row or per group, with an optional importance-weighted
//     scale search.
//   - quant/gptq: GPTQ (Frantar et al., "GPTQ: Accurate Post-Training
//     Quantization for Generative Pre-trained Transformers", ICLR 2023,
//     arXiv:2210.17323), which quantizes one column at a time and spreads
//     each column's error over the columns not yet quantized, using the
//     inverse Hessian of the layer's squared output error.
//   - quant/ggml: llama.cpp's block formats (Q4_0, Q4_K, IQ4_XS, ...).
//
// Statistics come from package calib, which runs the model over calibration
// text: the per-column importance (llama.cpp's "imatrix", the mean squared
// activation of each input column) and the Hessian H = XᵀX of a layer's
// inputs X. Both describe the same quadratic proxy for the damage done by
// replacing W with Ŵ: ‖(W−Ŵ)Xᵀ‖² = Σ_rows (w−ŵ) H (w−ŵ)ᵀ, of which the
// importance keeps only the diagonal.
package quant

import (
	"fmt"

	"github.com/terse-llm/terse/tensor"
)

// Quantizer compresses one weight matrix (Shape [out, in], any element type
// the caller can read). Implementations return a new tensor with the same
// name and shape; its element type is the method's own (an F32 tensor of
// the dequantized values for methods whose storage the caller decides, a
// ggml block type for the ggml formats). Quantize must not modify w.
type Quantizer interface {
	// Name identifies the method and its settings ("rtn-q4-g128-sym").
	Name() string
	// Quantize compresses w. stats may be nil or carry only what the
	// caller has; a method that cannot work without some statistic returns
	// an error that says which.
	Quantize(w *tensor.Tensor, stats *Stats) (*tensor.Tensor, error)
}

// Stats are the calibration statistics of one weight matrix's inputs. Every
// field is optional.
type Stats struct {
	// Importance holds one value per input column (len = w.Cols()): the mean
	// squared activation E[x_j²] over the calibration tokens, as llama.cpp's
	// imatrix gives it after dividing by its call count. Quantizers use it to
	// weight each column's squared error. nil: every column counts the same.
	Importance []float32

	// Hessian is XᵀX, summed (not averaged) over Samples input rows:
	// cols×cols, row-major, symmetric. nil: none collected.
	Hessian []float64
	// Samples is the number of input rows summed into Hessian.
	Samples int
}

// Check reports whether s fits a matrix with cols input columns.
func (s *Stats) Check(cols int) error {
	if s == nil {
		return nil
	}
	if s.Importance != nil && len(s.Importance) != cols {
		return fmt.Errorf("stats: %d importance values for %d columns", len(s.Importance), cols)
	}
	if s.Hessian != nil {
		if len(s.Hessian) != cols*cols {
			return fmt.Errorf("stats: Hessian has %d values, want %d×%d", len(s.Hessian), cols, cols)
		}
		if s.Samples < 0 {
			return fmt.Errorf("stats: negative Hessian sample count %d", s.Samples)
		}
	}
	return nil
}
