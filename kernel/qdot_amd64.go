//go:build amd64 && !purego

package kernel

import (
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Implemented in qdot_amd64.s. The block count is len(d); w must hold that
// many weight blocks, q 32 (Q8_0) or 256 (Q8_K) quants per block and bs 16
// sums per Q8_K block.

//go:noescape
func dotQ4KAVX2(w []byte, q []int8, d []float32, bs []int16) float32

//go:noescape
func dotQ6KAVX2(w []byte, q []int8, d []float32, bs []int16) float32

//go:noescape
func dotQ4_1VNNI(w []byte, q []int8, d, s []float32) float32

//go:noescape
func quantQ8_0AVX512(q []int8, d, s []float32, x []float32)

// quantQ8_0 is ggml.QuantizeActQ8_0 at level l (bit for bit).
func quantQ8_0(l level, a *q8Act, x []float32) {
	if l >= levelAVX2 && len(a.D) > 0 {
		x = x[:len(a.D)*q8Block]
		_ = a.Q[len(a.D)*q8Block-1]
		if l >= levelAVX512 {
			quantQ8_0AVX512(a.Q, a.D, a.S[:len(a.D)], x)
		} else {
			quantQ8_0AVX2(a.Q, a.D, a.S[:len(a.D)], x)
		}
		return
	}
	ggml.QuantizeActQ8_0(a, x)
}

//go:noescape
func quantQ8_0AVX2(q []int8, d, s []float32, x []float32)

// Implemented in qdot_b32_amd64.s: bit for bit the reference dot.

//go:noescape
func rowsQ8_0AVX2(out []float32, w []byte, rb int, q []int8, d []float32)

//go:noescape
func rowsQ4_0AVX2(out []float32, w []byte, rb int, q []int8, d []float32)

func rowsQ8_0AVX2Act(out []float32, w []byte, rb int, a *q8Act) {
	rowsQ8_0AVX2(out, w, rb, a.Q, a.D)
}

//go:noescape
func rowsQ4_0AVX2X(out []float32, w []byte, rb int, q []int8, d []float32)

// rowsQ4_0AVX2Act takes whole groups of eight rows through the eight-row
// kernel (rows in lanes, no serial chain of float adds per row) and the
// rest, or rows of more than vnnixMaxBlocks blocks, one row at a time.
func rowsQ4_0AVX2Act(out []float32, w []byte, rb int, a *q8Act) {
	if n8 := len(out) &^ 7; n8 > 0 && len(a.D) <= vnnixMaxBlocks {
		rowsQ4_0AVX2X(out[:n8], w, rb, a.Q, a.D)
		out, w = out[n8:], w[n8*rb:]
	}
	if len(out) > 0 {
		rowsQ4_0AVX2(out, w, rb, a.Q, a.D)
	}
}

func dotQ8_0AVX2Row(w []byte, a *q8Act) float32 {
	var o [1]float32
	rowsQ8_0AVX2(o[:], w, len(w), a.Q, a.D)
	return o[0]
}

func dotQ4_0AVX2Row(w []byte, a *q8Act) float32 {
	var o [1]float32
	rowsQ4_0AVX2(o[:], w, len(w), a.Q, a.D)
	return o[0]
}

//go:noescape
func rowsQ8_0VNNIX(out []float32, w []byte, rb int, q []int8, d []float32)

//go:noescape
func rowsQ4_0VNNIX(out []float32, w []byte, rb int, q []int8, d []float32)

// vnnixMaxBlocks is the most activation blocks the exact VNNI kernels
// take (their frame holds one int32 per block); longer rows use the AVX2
// kernels, which give the same results.
const vnnixMaxBlocks = 1024

func rowsQ8_0VNNIXAct(out []float32, w []byte, rb int, a *q8Act) {
	if len(a.D) > vnnixMaxBlocks {
		rowsQ8_0AVX2(out, w, rb, a.Q, a.D)
		return
	}
	rowsQ8_0VNNIX(out, w, rb, a.Q, a.D)
}

func rowsQ4_0VNNIXAct(out []float32, w []byte, rb int, a *q8Act) {
	if len(a.D) > vnnixMaxBlocks {
		rowsQ4_0AVX2(out, w, rb, a.Q, a.D)
		return
	}
	rowsQ4_0VNNIX(out, w, rb, a.Q, a.D)
}

func dotQ8_0VNNIXRow(w []byte, a *q8Act) float32 {
	var o [1]float32
	rowsQ8_0VNNIXAct(o[:], w, len(w), a)
	return o[0]
}

func dotQ4_0VNNIXRow(w []byte, a *q8Act) float32 {
	var o [1]float32
	rowsQ4_0VNNIXAct(o[:], w, len(w), a)
	return o[0]
}

//go:noescape
func rowsQ4KAVX2(out []float32, w []byte, rb int, q []int8, d []float32, bs []int16)

//go:noescape
func rowsQ6KAVX2(out []float32, w []byte, rb int, q []int8, d []float32, bs []int16)

func rowsQ4KAVX2Act(out []float32, w []byte, rb int, a *q8Act) {
	rowsQ4KAVX2(out, w, rb, a.Q, a.D, a.BS)
}

func rowsQ6KAVX2Act(out []float32, w []byte, rb int, a *q8Act) {
	rowsQ6KAVX2(out, w, rb, a.Q, a.D, a.BS)
}

//go:noescape
func dequantQ4_0AVX512(dst []float32, w []byte)

//go:noescape
func dequantQ8_0AVX512(dst []float32, w []byte)

func dotQ4_1VNNIRow(w []byte, a *q8Act) float32 { return dotQ4_1VNNI(w, a.Q, a.D, a.S) }
func dotQ4KAVX2Row(w []byte, a *q8Act) float32  { return dotQ4KAVX2(w, a.Q, a.D, a.BS) }
func dotQ6KAVX2Row(w []byte, a *q8Act) float32  { return dotQ6KAVX2(w, a.Q, a.D, a.BS) }

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

// init registers the SIMD overrides of the integer path, ascending in
// level (the last one usable at a level wins): AVX2 row kernels, AVX-512
// row dequantizers and, where the CPU has AVX512_VNNI, the VPDPBUSD
// kernels on top of levelAVX512. The Q8_0, Q4_0, Q4_K and Q6_K row
// kernels of every level give the reference dot bit for bit.
func init() {
	registerQKernel(tensor.Q8_0, qKernel{min: levelAVX2, dot: dotQ8_0AVX2Row, rows: rowsQ8_0AVX2Act})
	registerQKernel(tensor.Q4_0, qKernel{min: levelAVX2, dot: dotQ4_0AVX2Row, rows: rowsQ4_0AVX2Act})
	registerQKernel(tensor.Q4_K, qKernel{min: levelAVX2, dot: dotQ4KAVX2Row, rows: rowsQ4KAVX2Act})
	registerQKernel(tensor.Q6_K, qKernel{min: levelAVX2, dot: dotQ6KAVX2Row, rows: rowsQ6KAVX2Act})
	registerQKernel(tensor.Q4_0, qKernel{min: levelAVX512, dequant: dequantQ4_0AVX512})
	registerQKernel(tensor.Q8_0, qKernel{min: levelAVX512, dequant: dequantQ8_0AVX512})
	if hasVNNI {
		registerQKernel(tensor.Q4_0, qKernel{min: levelAVX512, dot: dotQ4_0VNNIXRow, rows: rowsQ4_0VNNIXAct})
		registerQKernel(tensor.Q8_0, qKernel{min: levelAVX512, dot: dotQ8_0VNNIXRow, rows: rowsQ8_0VNNIXAct})
		registerQKernel(tensor.Q4_1, qKernel{min: levelAVX512, dot: dotQ4_1VNNIRow})
	}
}
