// Package ggml holds ggml's block-quantized element types: one block layout,
// its dequantizer (and later its quantizer) side by side, bit-exact with ggml.
//
// Every dequantizer reproduces ggml's reference dequantize_row_* (in
// ggml/src/ggml-quants.c) operation for operation in float32: scales stored
// as IEEE binary16 are widened exactly, each product and sum is rounded to
// float32 on its own, and no multiply-add is fused (Go may fuse x*y+z on some
// architectures unless the product is converted explicitly, so the code
// writes float32(x*y)+z wherever ggml's C does a separate multiply and add).
// The block layouts are described beside each implementation.
package ggml

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/terse-llm/terse/tensor"
)

// Dequantize expands len(dst) elements of type dt, stored in src, into dst.
// len(dst) must be a whole number of blocks and src exactly their bytes.
// It does not allocate.
func Dequantize(dt tensor.DType, src []byte, dst []float32) error {
	need, err := dt.RowBytes(len(dst))
	if err != nil {
		return err
	}
	if len(src) != need {
		return fmt.Errorf("%s: %d elements need %d bytes, have %d", dt, len(dst), need, len(src))
	}
	switch dt {
	case tensor.F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case tensor.F16:
		for i := range dst {
			dst[i] = tensor.F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case tensor.BF16:
		for i := range dst {
			dst[i] = tensor.BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case tensor.Q4_0:
		dequantQ4_0(src, dst)
	case tensor.Q4_1:
		dequantQ4_1(src, dst)
	case tensor.Q5_0:
		dequantQ5_0(src, dst)
	case tensor.Q5_1:
		dequantQ5_1(src, dst)
	case tensor.Q8_0:
		dequantQ8_0(src, dst)
	case tensor.Q2_K:
		dequantQ2K(src, dst)
	case tensor.Q3_K:
		dequantQ3K(src, dst)
	case tensor.Q4_K:
		dequantQ4K(src, dst)
	case tensor.Q5_K:
		dequantQ5K(src, dst)
	case tensor.Q6_K:
		dequantQ6K(src, dst)
	case tensor.IQ4_NL:
		dequantIQ4NL(src, dst)
	case tensor.IQ4_XS:
		dequantIQ4XS(src, dst)
	default:
		return fmt.Errorf("dequantize: type %s is not supported", dt)
	}
	return nil
}

// Supported reports whether Dequantize handles type dt.
func Supported(dt tensor.DType) bool {
	switch dt {
	case tensor.F32, tensor.F16, tensor.BF16,
		tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0,
		tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K,
		tensor.IQ4_NL, tensor.IQ4_XS:
		return true
	}
	return false
}

// DequantizeTensor returns all of t's elements as float32, row-major. Unlike
// Dequantize it allocates the result.
func DequantizeTensor(t *tensor.Tensor) ([]float32, error) {
	n := t.NumElements()
	want, err := t.ByteSize()
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if want != len(t.Data) {
		return nil, fmt.Errorf("tensor %q: %s %v needs %d bytes, have %d", t.Name, t.DType, t.Shape, want, len(t.Data))
	}
	dst := make([]float32, n)
	if err := Dequantize(t.DType, t.Data, dst); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return dst, nil
}

// f16 reads the little-endian binary16 at b[0:2] as float32.
func f16(b []byte) float32 {
	return tensor.F16ToF32(uint16(b[0]) | uint16(b[1])<<8)
}
