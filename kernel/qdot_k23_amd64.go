//go:build amd64 && !purego

package kernel

import "github.com/terse-llm/terse/tensor"

// Row dots for Q2_K and Q3_K (qdot_k23_amd64.s): AVX2, and equal to the
// reference dots of quant/ggml bit for bit (the integer block sums are
// exact and the float32 operations are the reference's, in its order).
// The multi-row kernels take four rows at a time (dot4Q2KAVX2,
// dot4Q3KAVX2): their horizontal sums are shared and their float
// epilogues run in the lanes of one vector, and they prefetch the next
// four rows linearly; on a Zen 3 core that reads Q2_K rows from memory
// 1.3× as fast as one row at a time (BenchmarkQDecodeDRAM/Q2_K/n=1/rows).
// Arguments as in qdot_k_amd64.go: the block count is len(d), q holds 256
// quants per block and bs 16 sums per block.

//go:noescape
func dotQ2KAVX2(w []byte, q []int8, d []float32, bs []int16) float32

//go:noescape
func dotQ3KAVX2(w []byte, q []int8, d []float32, bs []int16) float32

//go:noescape
func dot4Q2KAVX2(out *[4]float32, w []byte, rb int, q []int8, d []float32, bs []int16)

func dotQ2KAVX2Row(w []byte, a *q8Act) float32 { return dotQ2KAVX2(w, a.Q, a.D, a.BS) }

// rowsQ2KAVX2 is dotQ2KAVX2 over the len(out) rows of rb bytes at w, four
// at a time (dot4Q2KAVX2), the last one to three alone.
func rowsQ2KAVX2(out []float32, w []byte, rb int, a *q8Act) {
	for len(out) >= 4 {
		dot4Q2KAVX2((*[4]float32)(out), w[:3*rb+len(a.D)*84], rb, a.Q, a.D, a.BS)
		out, w = out[4:], w[4*rb:]
	}
	n := len(a.D) * 84 // a row's bytes: rows may be further apart (QDotRows)
	for i := range out {
		out[i] = dotQ2KAVX2(w[i*rb:i*rb+n], a.Q, a.D, a.BS)
	}
}

//go:noescape
func dot4Q3KAVX2(out *[4]float32, w []byte, rb int, q []int8, d []float32, bs []int16)

func dotQ3KAVX2Row(w []byte, a *q8Act) float32 { return dotQ3KAVX2(w, a.Q, a.D, a.BS) }

// rowsQ3KAVX2 is dotQ3KAVX2 over the len(out) rows of rb bytes at w, four
// at a time (dot4Q3KAVX2), the last one to three alone.
func rowsQ3KAVX2(out []float32, w []byte, rb int, a *q8Act) {
	for len(out) >= 4 {
		dot4Q3KAVX2((*[4]float32)(out), w[:3*rb+len(a.D)*110], rb, a.Q, a.D, a.BS)
		out, w = out[4:], w[4*rb:]
	}
	n := len(a.D) * 110 // a row's bytes: rows may be further apart (QDotRows)
	for i := range out {
		out[i] = dotQ3KAVX2(w[i*rb:i*rb+n], a.Q, a.D, a.BS)
	}
}

// init registers the AVX2 row dots of Q2_K and Q3_K.
func init() {
	registerQKernel(tensor.Q2_K, qKernel{min: levelAVX2, dot: dotQ2KAVX2Row, rows: rowsQ2KAVX2})
	registerQKernel(tensor.Q3_K, qKernel{min: levelAVX2, dot: dotQ3KAVX2Row, rows: rowsQ3KAVX2})
}
