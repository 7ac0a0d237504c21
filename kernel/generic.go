package kernel

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/terse-llm/terse/tensor"
)

// The portable implementations. They are the reference the SIMD versions
// are tested against and the fallback on every other platform. Callers have
// already checked lengths (len(b) == len(a), and so on).

func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpyGeneric(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

func f16ToF32Generic(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = tensor.F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func bf16ToF32Generic(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

func dotF16Generic(w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(x); i += 2 {
		s0 += tensor.F16ToF32(binary.LittleEndian.Uint16(w[2*i:])) * x[i]
		s1 += tensor.F16ToF32(binary.LittleEndian.Uint16(w[2*i+2:])) * x[i+1]
	}
	for ; i < len(x); i++ {
		s0 += tensor.F16ToF32(binary.LittleEndian.Uint16(w[2*i:])) * x[i]
	}
	return s0 + s1
}

func dotBF16Generic(w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(x); i += 2 {
		s0 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(w[2*i:]))<<16) * x[i]
		s1 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(w[2*i+2:]))<<16) * x[i+1]
	}
	for ; i < len(x); i++ {
		s0 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(w[2*i:]))<<16) * x[i]
	}
	return s0 + s1
}

// gemm4x4Generic sets out[4*i+j] = dot(w[i][:k], x[j][:k]) for i, j < 4.
func gemm4x4Generic(w, x *[4]*float32, k int, out *[16]float32) {
	w0, w1 := unsafe.Slice(w[0], k), unsafe.Slice(w[1], k)
	w2, w3 := unsafe.Slice(w[2], k), unsafe.Slice(w[3], k)
	for j := 0; j < 4; j++ {
		xj := unsafe.Slice(x[j], k)
		var s0, s1, s2, s3 float32
		for p, v := range xj {
			s0 += w0[p] * v
			s1 += w1[p] * v
			s2 += w2[p] * v
			s3 += w3[p] * v
		}
		out[j], out[4+j], out[8+j], out[12+j] = s0, s1, s2, s3
	}
}
