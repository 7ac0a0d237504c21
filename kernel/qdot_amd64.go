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

//go:noescape
func rowsQ4_0VNNI(out []float32, w []byte, rb int, q []int8, d, s []float32)

//go:noescape
func rowsQ8_0VNNI(out []float32, w []byte, rb int, q []int8, d []float32)

//go:noescape
func rowsQ4KAVX2(out []float32, w []byte, rb int, q []int8, d []float32, bs []int16)

//go:noescape
func rowsQ6KAVX2(out []float32, w []byte, rb int, q []int8, d []float32, bs []int16)

func rowsQ4KAVX2Act(out []float32, w []byte, rb int, a *q8Act) {
	rowsQ4KAVX2(out, w, rb, a.q, a.d, a.bs)
}

func rowsQ6KAVX2Act(out []float32, w []byte, rb int, a *q8Act) {
	rowsQ6KAVX2(out, w, rb, a.q, a.d, a.bs)
}

func rowsQ4_0VNNIAct(out []float32, w []byte, rb int, a *q8Act) {
	rowsQ4_0VNNI(out, w, rb, a.q, a.d, a.s)
}

func rowsQ8_0VNNIAct(out []float32, w []byte, rb int, a *q8Act) {
	rowsQ8_0VNNI(out, w, rb, a.q, a.d)
}

// qrowsFor returns a kernel that dots consecutive rows of dt weights with
// one activation in a single call, or nil where level l has none.
func qrowsFor(l level, dt tensor.DType) qrowsFn {
	if l < levelAVX2 {
		return nil
	}
	switch dt {
	case tensor.Q4_K:
		return rowsQ4KAVX2Act
	case tensor.Q6_K:
		return rowsQ6KAVX2Act
	}
	if l < levelAVX512 || !hasVNNI {
		return nil
	}
	switch dt {
	case tensor.Q4_0:
		return rowsQ4_0VNNIAct
	case tensor.Q8_0:
		return rowsQ8_0VNNIAct
	}
	return nil
}

//go:noescape
func dequantQ4_0AVX512(dst []float32, w []byte)

//go:noescape
func dequantQ8_0AVX512(dst []float32, w []byte)

// dequantRow widens one row of a quantized type into dst with a SIMD
// routine, reporting false where level l has none for dt. Results equal
// ggml.Dequantize's bit for bit.
func dequantRow(l level, dt tensor.DType, dst []float32, src []byte) bool {
	if l < levelAVX512 || len(dst)%32 != 0 {
		return false
	}
	nb := len(dst) / 32
	switch dt {
	case tensor.Q4_0:
		dequantQ4_0AVX512(dst, src[:nb*18])
	case tensor.Q8_0:
		dequantQ8_0AVX512(dst, src[:nb*34])
	default:
		return false
	}
	return true
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
