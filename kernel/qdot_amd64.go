//go:build amd64 && !purego

package kernel

import "github.com/terse-llm/terse/tensor"

// Implemented in qdot_amd64.s. The block count is len(d); w must hold that
// many weight blocks, q 32 (Q8_0) or 256 (Q8_K) quants per block and bs 16
// sums per Q8_K block.

//go:noescape
func dotQ8_0AVX2(w []byte, q []int8, d []float32) float32

//go:noescape
func dotQ4_0AVX2(w []byte, q []int8, d []float32) float32

//go:noescape
func dotQ4KAVX2(w []byte, q []int8, d []float32, bs []int16) float32

//go:noescape
func dotQ6KAVX2(w []byte, q []int8, d []float32, bs []int16) float32

//go:noescape
func dotQ4_0VNNI(w []byte, q []int8, d, s []float32) float32

//go:noescape
func dotQ8_0VNNI(w []byte, q []int8, d []float32) float32

//go:noescape
func dotQ4_1VNNI(w []byte, q []int8, d, s []float32) float32

//go:noescape
func quantQ8_0AVX512(q []int8, d, s []float32, x []float32)

// quantQ8_0 is quantizeQ8_0 at level l.
func quantQ8_0(l level, a *q8Act, x []float32) {
	if l >= levelAVX512 && len(a.d) > 0 {
		x = x[:len(a.d)*q8Block]
		_ = a.q[len(a.d)*q8Block-1]
		quantQ8_0AVX512(a.q, a.d, a.s[:len(a.d)], x)
		return
	}
	quantizeQ8_0(a, x)
}

func dotQ8_0VNNIRow(w []byte, a *q8Act) float32 { return dotQ8_0VNNI(w, a.q, a.d) }
func dotQ4_1VNNIRow(w []byte, a *q8Act) float32 { return dotQ4_1VNNI(w, a.q, a.d, a.s) }
func dotQ4_0VNNIRow(w []byte, a *q8Act) float32 { return dotQ4_0VNNI(w, a.q, a.d, a.s) }
func dotQ8_0AVX2Row(w []byte, a *q8Act) float32 { return dotQ8_0AVX2(w, a.q, a.d) }
func dotQ4_0AVX2Row(w []byte, a *q8Act) float32 { return dotQ4_0AVX2(w, a.q, a.d) }
func dotQ4KAVX2Row(w []byte, a *q8Act) float32  { return dotQ4KAVX2(w, a.q, a.d, a.bs) }
func dotQ6KAVX2Row(w []byte, a *q8Act) float32  { return dotQ6KAVX2(w, a.q, a.d, a.bs) }

// hasVNNI reports AVX512_VNNI (VPDPBUSD on 128/256/512-bit registers with
// AVX-512 VL), used on top of levelAVX512. It calls detect itself rather
// than reading supported: package variables are initialized before init
// functions run, so supported is still levelGeneric here.
var hasVNNI = func() bool {
	if detect() < levelAVX512 {
		return false
	}
	_, _, ecx7, _ := cpuid(7, 0)
	return ecx7&(1<<11) != 0
}()

// qdotFor returns the row kernel for weights of type dt at level l, or
// generic where no SIMD version exists.
func qdotFor(l level, dt tensor.DType, generic qdotFn) qdotFn {
	if l < levelAVX2 {
		return generic
	}
	if l >= levelAVX512 && hasVNNI {
		switch dt {
		case tensor.Q4_0:
			return dotQ4_0VNNIRow
		case tensor.Q8_0:
			return dotQ8_0VNNIRow
		case tensor.Q4_1:
			return dotQ4_1VNNIRow
		}
	}
	switch dt {
	case tensor.Q8_0:
		return dotQ8_0AVX2Row
	case tensor.Q4_0:
		return dotQ4_0AVX2Row
	case tensor.Q4_K:
		return dotQ4KAVX2Row
	case tensor.Q6_K:
		return dotQ6KAVX2Row
	}
	return generic
}
