package ggml

import (
	"fmt"

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
	t := lookup(dt)
	if t == nil {
		return fmt.Errorf("dequantize: type %s is not supported", dt)
	}
	if len(src) != need {
		return fmt.Errorf("%s: %d elements need %d bytes, have %d", dt, len(dst), need, len(src))
	}
	t.Dequantize(src, dst)
	return nil
}

// Supported reports whether Dequantize handles type dt (whether dt is
// registered).
func Supported(dt tensor.DType) bool { return lookup(dt) != nil }

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
