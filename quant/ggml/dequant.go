// Package ggml holds ggml's block-quantized element types: one block layout,
// its dequantizer (and later its quantizer) side by side, bit-exact with ggml.
package ggml

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/terse-llm/terse/tensor"
)

// Dequantize expands len(dst) elements of type dt, stored in src, into dst.
// len(dst) must be a whole number of blocks and src exactly their bytes.
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
	default:
		return fmt.Errorf("dequantize: type %s is not supported", dt)
	}
	return nil
}
