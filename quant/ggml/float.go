package ggml

import (
	"encoding/binary"
	"math"

	"github.com/terse-llm/terse/tensor"
)

// The plain float types F32, F16 and BF16: one little-endian element per
// "block" of 4, 2 and 2 bytes. Narrowing rounds to nearest even; importance
// weights do not change it. They have no integer dot product.

func dequantF32(src []byte, dst []float32) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func quantF32(src []float32, dst []byte) {
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

func dequantF16(src []byte, dst []float32) {
	for i := range dst {
		dst[i] = tensor.F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func quantF16(src []float32, dst []byte) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], tensor.F32ToF16(v))
	}
}

func dequantBF16(src []byte, dst []float32) {
	for i := range dst {
		dst[i] = tensor.BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func quantBF16(src []float32, dst []byte) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], tensor.F32ToBF16(v))
	}
}

func init() {
	register(&Type{DType: tensor.F32, BlockSize: 1, BlockBytes: 4, Dequantize: dequantF32, Quantize: quantF32})
	register(&Type{DType: tensor.F16, BlockSize: 1, BlockBytes: 2, Scales: []int{0}, Dequantize: dequantF16, Quantize: quantF16})
	register(&Type{DType: tensor.BF16, BlockSize: 1, BlockBytes: 2, Dequantize: dequantBF16, Quantize: quantBF16})
}
