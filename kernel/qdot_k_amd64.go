//go:build amd64 && !purego

package kernel

import "github.com/terse-llm/terse/tensor"

// Row dots for the k-quants and IQ4 types that qdot_amd64.go does not
// cover: IQ4_XS and IQ4_NL (qdot_iq4_amd64.s), Q5_K, Q5_0, Q5_1 and Q4_1
// (qdot_k_amd64.s); Q2_K and Q3_K are in qdot_k23_amd64.go. Each computes the reference dot's exact integer
// block sums; IQ4_XS also does the float32 scaling and accumulation in the
// reference's order (bit for bit ggml.Type.Dot, as the sixteen-row
// kernels), the others order them differently.
// Argument conventions are those of qdot_amd64.go: the block count is
// len(d), q holds 32 (Q8_0) or 256 (Q8_K) quants per block, s one Q8_0
// block sum d·Σq per block and bs 16 sums per Q8_K block.

//go:noescape
func dotIQ4XSAVX2(w []byte, q []int8, d []float32) float32

//go:noescape
func dotIQ4NLAVX2(w []byte, q []int8, d []float32) float32

//go:noescape
func dotQ5KAVX2(w []byte, q []int8, d []float32, bs []int16) float32

//go:noescape
func dotQ5_0AVX2(w []byte, q []int8, d []float32) float32

//go:noescape
func dotQ5_1AVX2(w []byte, q []int8, d, s []float32) float32

//go:noescape
func dotQ4_1AVX2(w []byte, q []int8, d, s []float32) float32

func dotQ5KAVX2Row(w []byte, a *q8Act) float32   { return dotQ5KAVX2(w, a.Q, a.D, a.BS) }
func dotQ5_0AVX2Row(w []byte, a *q8Act) float32  { return dotQ5_0AVX2(w, a.Q, a.D) }
func dotQ5_1AVX2Row(w []byte, a *q8Act) float32  { return dotQ5_1AVX2(w, a.Q, a.D, a.S) }
func dotQ4_1AVX2Row(w []byte, a *q8Act) float32  { return dotQ4_1AVX2(w, a.Q, a.D, a.S) }
func dotIQ4XSAVX2Row(w []byte, a *q8Act) float32 { return dotIQ4XSAVX2(w, a.Q, a.D) }
func dotIQ4NLAVX2Row(w []byte, a *q8Act) float32 { return dotIQ4NLAVX2(w, a.Q, a.D) }

//go:noescape
func dot4Q5_0AVX2(out *[4]float32, w []byte, rb int, q []int8, d []float32)

// rowsQ5_0AVX2 is dotQ5_0AVX2 over the len(out) rows of rb bytes at w,
// four at a time (dot4Q5_0AVX2: the same results), the last one to three
// alone.
func rowsQ5_0AVX2(out []float32, w []byte, rb int, a *q8Act) {
	for len(out) >= 4 {
		dot4Q5_0AVX2((*[4]float32)(out), w[:3*rb+len(a.D)*22], rb, a.Q, a.D)
		out, w = out[4:], w[4*rb:]
	}
	n := len(a.D) * 22 // a row's bytes: rows may be further apart (QDotRows)
	for i := range out {
		out[i] = dotQ5_0AVX2(w[i*rb:i*rb+n], a.Q, a.D)
	}
}

//go:noescape
func dot4IQ4NLAVX2(out *[4]float32, w []byte, rb int, q []int8, d []float32)

// rowsIQ4NLAVX2 is dotIQ4NLAVX2 over the len(out) rows of rb bytes at w,
// four at a time (dot4IQ4NLAVX2: the same results), the last one to three
// alone.
func rowsIQ4NLAVX2(out []float32, w []byte, rb int, a *q8Act) {
	for len(out) >= 4 {
		dot4IQ4NLAVX2((*[4]float32)(out), w[:3*rb+len(a.D)*18], rb, a.Q, a.D)
		out, w = out[4:], w[4*rb:]
	}
	n := len(a.D) * 18 // a row's bytes: rows may be further apart (QDotRows)
	for i := range out {
		out[i] = dotIQ4NLAVX2(w[i*rb:i*rb+n], a.Q, a.D)
	}
}

//go:noescape
func rowsIQ4XSAVX2(out []float32, w []byte, rb int, q []int8, d []float32)

// iq4xsRowsMaxCols is the longest activation rowsIQ4XSAVX2 takes: its
// frame holds two permuted bytes per column.
const iq4xsRowsMaxCols = 16384

// rowsIQ4XSAVX2Act dots rows through rowsIQ4XSAVX2, which permutes the
// activations once per call, and rows longer than its frame through the
// row dot (the same results).
func rowsIQ4XSAVX2Act(out []float32, w []byte, rb int, a *q8Act) {
	if len(a.Q) > iq4xsRowsMaxCols {
		for i := range out {
			out[i] = dotIQ4XSAVX2(w[i*rb:(i+1)*rb], a.Q, a.D)
		}
		return
	}
	rowsIQ4XSAVX2(out, w, rb, a.Q, a.D)
}

// init registers the AVX2 row dots of this file's types.
func init() {
	registerQKernel(tensor.IQ4_XS, qKernel{min: levelAVX2, dot: dotIQ4XSAVX2Row, rows: rowsIQ4XSAVX2Act})
	registerQKernel(tensor.IQ4_NL, qKernel{min: levelAVX2, dot: dotIQ4NLAVX2Row, rows: rowsIQ4NLAVX2})
	registerQKernel(tensor.Q5_K, qKernel{min: levelAVX2, dot: dotQ5KAVX2Row})
	registerQKernel(tensor.Q5_0, qKernel{min: levelAVX2, dot: dotQ5_0AVX2Row, rows: rowsQ5_0AVX2})
	registerQKernel(tensor.Q5_1, qKernel{min: levelAVX2, dot: dotQ5_1AVX2Row})
	registerQKernel(tensor.Q4_1, qKernel{min: levelAVX2, dot: dotQ4_1AVX2Row})
}
