package ggml

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/terse-llm/terse/tensor"
)

// Quantizers
//
// Quantize encodes float32 rows into ggml's block types the way llama.cpp's
// llama-quantize does: through ggml_quantize_chunk, which calls the
// quantize_<type> function of ggml/src/ggml-quants.c. Without importance
// weights that is the type's reference quantizer (quantize_row_<type>_ref,
// for the K-quants and the legacy types) or, for IQ4_NL and IQ4_XS, the
// searching quantizer with no weights; with importance weights (an imatrix
// entry) it is the weighted search (quantize_row_<type>_impl).
//
// Every quantizer repeats ggml's float32 arithmetic operation for operation:
// each product and sum is rounded to float32 on its own, in the order the C
// code evaluates it (a*b*c is (a*b)*c), and no multiply-add is fused (the
// code writes float32(a*b)+c, which Go must not contract). Rounding to the
// nearest integer uses ggml's nearest_int (add 1.5·2^23 and read the
// mantissa: ties to even), float→int8 casts truncate the way x86's
// cvttss2si does, and scales are narrowed to binary16 with
// round-to-nearest-even as ggml's conversion does. The result is
// byte-identical with llama.cpp (checked against llama-quantize's own files
// in the tests).

// Quantize encodes src, one or more whole rows, as type dt into dst, which
// must hold exactly dt.RowBytes(len(src)) bytes.
//
// importance is llama.cpp's quant_weights: one non-negative weight per
// column (an imatrix entry: the mean squared activation of each input),
// so its length is the row length and len(src) must be a whole number of
// rows of it; nil means no weights. Types without a weighted quantizer
// (Q8_0, the plain float types) ignore it, as ggml does.
//
// Supported types: every registered type with a quantizer
// (QuantizeSupported). Every input value must be finite (NaN or ±Inf is an
// error, where ggml would write garbage); finite values so large that a
// block's scale does not fit binary16 give an infinite scale, as in ggml. Quantize does not allocate.
func Quantize(dt tensor.DType, src []float32, dst []byte, importance []float32) error {
	t := lookup(dt)
	if t == nil || t.Quantize == nil {
		return fmt.Errorf("quantize: type %s is not supported", dt)
	}
	need, err := dt.RowBytes(len(src))
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	if len(dst) != need {
		return fmt.Errorf("quantize: %s: %d elements need %d bytes, dst has %d", dt, len(src), need, len(dst))
	}
	for i, v := range src {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("quantize: %s: element %d is %v", dt, i, v)
		}
	}
	if importance != nil {
		cols := len(importance)
		if cols == 0 || cols%dt.BlockSize() != 0 {
			return fmt.Errorf("quantize: %s: importance length %d is not a positive multiple of the block size %d", dt, cols, dt.BlockSize())
		}
		if len(src)%cols != 0 {
			return fmt.Errorf("quantize: %s: %d elements are not whole rows of %d (the importance length)", dt, len(src), cols)
		}
		for i, w := range importance {
			if !(w >= 0) || math.IsInf(float64(w), 0) {
				return fmt.Errorf("quantize: %s: importance %d is %v, want finite and non-negative", dt, i, w)
			}
		}
	}
	if importance == nil && t.NeedsImportance {
		return fmt.Errorf("quantize: %s needs importance weights (an imatrix)", dt)
	}
	if importance == nil || t.QuantizeWeighted == nil {
		t.Quantize(src, dst)
		return nil
	}
	cols := len(importance)
	rowBytes := cols / dt.BlockSize() * dt.BlockBytes()
	for r := 0; r < len(src)/cols; r++ {
		t.QuantizeWeighted(src[r*cols:(r+1)*cols], dst[r*rowBytes:(r+1)*rowBytes], importance)
	}
	return nil
}

// QuantizeRows encodes src, whole rows of cols elements, as type dt and
// returns the new bytes. importance is nil or one weight per column (length
// cols); see Quantize.
func QuantizeRows(dt tensor.DType, src []float32, cols int, importance []float32) ([]byte, error) {
	if cols <= 0 || len(src)%cols != 0 {
		return nil, fmt.Errorf("quantize: %d elements are not whole rows of %d", len(src), cols)
	}
	if importance != nil && len(importance) != cols {
		return nil, fmt.Errorf("quantize: importance has %d weights for rows of %d", len(importance), cols)
	}
	if bs := dt.BlockSize(); bs > 0 && cols%bs != 0 {
		return nil, fmt.Errorf("quantize: %s: row length %d is not a multiple of the block size %d", dt, cols, bs)
	}
	n, err := dt.RowBytes(len(src))
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	dst := make([]byte, n)
	if err := Quantize(dt, src, dst, importance); err != nil {
		return nil, err
	}
	return dst, nil
}

// QuantizeSupported reports whether Quantize handles type dt (whether dt
// is registered with a quantizer).
func QuantizeSupported(dt tensor.DType) bool {
	t := lookup(dt)
	return t != nil && t.Quantize != nil
}

// nearestInt is ggml's nearest_int: adding 1.5·2^23 leaves the rounded
// integer (ties to even) in the low mantissa bits. It is exact for
// |f| < 2^22; beyond that (and for NaN) it returns what ggml's bit trick
// returns, without panicking.
func nearestInt(f float32) int32 {
	v := float32(f) + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

// truncInt32 converts like C's float→int cast compiled for x86-64
// (cvttss2si): truncation toward zero, and the "integer indefinite" value
// math.MinInt32 for NaN and out-of-range input. Narrower C casts
// ((int8_t)f, (uint8_t)f) keep the low bits of this result.
func truncInt32(f float32) int32 {
	if !(f > -2147483904 && f < 2147483648) {
		return math.MinInt32
	}
	return int32(f)
}

// abs32 is fabsf.
func abs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

// sqrt32 is sqrtf (the float64 square root of a float32, rounded back to
// float32, is correctly rounded).
func sqrt32(f float32) float32 { return float32(math.Sqrt(float64(f))) }

// putF16 stores f as little-endian binary16 (GGML_FP32_TO_FP16).
func putF16(b []byte, f float32) {
	binary.LittleEndian.PutUint16(b, tensor.F32ToF16(f))
}

// clampInt32 returns v limited to [lo, hi] (ggml's MAX(lo, MIN(hi, v))).
func clampInt32(v, lo, hi int32) int32 {
	if v > hi {
		v = hi
	}
	if v < lo {
		v = lo
	}
	return v
}
