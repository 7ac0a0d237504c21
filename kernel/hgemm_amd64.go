//go:build amd64 && !purego

package kernel

import (
	"encoding/binary"
	"unsafe"

	"github.com/terse-llm/terse/tensor"
)

// Implemented in hgemm_amd64.s (AVX-512 F/BW). w holds four pointers to
// half-precision weight rows, x one or four pointers to float32
// activations (block-permuted for BF16, see permuteBF16).

//go:noescape
func hgemmBF16x4AVX512(w *[4]*byte, x *[4]*float32, k int, out *[16]float32)

//go:noescape
func hgemmBF16x1AVX512(w *[4]*byte, x *[4]*float32, k int, out *[16]float32)

//go:noescape
func hgemmF16x4AVX512(w *[4]*byte, x *[4]*float32, k int, out *[16]float32)

//go:noescape
func hgemmF16x1AVX512(w *[4]*byte, x *[4]*float32, k int, out *[16]float32)

// halfFused reports whether MatMul multiplies dt weights at level l with
// the fused half kernels (hgemm.go) instead of widening them first.
// AVX-512 has kernels for both half types; AVX2 (simd_amd64.s) for F16,
// whose VCVTPH2PS widens in the load.
func halfFused(l level, dt tensor.DType) bool {
	switch l {
	case levelAVX512:
		return dt == tensor.F16 || dt == tensor.BF16
	case levelAVX2:
		return dt == tensor.F16
	}
	return false
}

//go:noescape
func hgemmF16x3AVX2(w *[4]*byte, x *[4]*float32, k int, out *[16]float32)

// halfNR is how many tokens one fused kernel call covers at level l.
func halfNR(l level) int {
	if l == levelAVX2 {
		return 3
	}
	return 4
}

// halfX1 reports whether level l has a one-token fused kernel (whose
// results sit at out[i], row i).
func halfX1(l level) bool { return l == levelAVX512 }

// halfMicro runs the fused kernel for dt at level l with halfNR(l) tokens
// (out as micro's) or, where halfX1(l), with one (nt == 1; out[i] for row
// i). On AVX2 one or two tokens take the three-token kernel with the last
// one repeated, so that every output gets the same arithmetic at any
// position and batch size; the k mod 8 tail is added in Go, in order.
func halfMicro(l level, dt tensor.DType, nt int, w *[4]*byte, x *[4]*float32, k int, out *[16]float32) {
	if l == levelAVX2 {
		hgemmF16x3AVX2(w, x, k, out)
		if k8 := k &^ 7; k8 < k {
			for i := 0; i < 4; i++ {
				wi := unsafe.Slice(w[i], 2*k)[2*k8:]
				for j := 0; j < 3; j++ {
					xj := unsafe.Slice(x[j], k)[k8:]
					s := out[4*i+j]
					for p := range xj {
						s += tensor.F16ToF32(binary.LittleEndian.Uint16(wi[2*p:])) * xj[p]
					}
					out[4*i+j] = s
				}
			}
		}
		return
	}
	switch {
	case dt == tensor.BF16 && nt == 1:
		hgemmBF16x1AVX512(w, x, k, out)
	case dt == tensor.BF16:
		hgemmBF16x4AVX512(w, x, k, out)
	case nt == 1:
		hgemmF16x1AVX512(w, x, k, out)
	default:
		hgemmF16x4AVX512(w, x, k, out)
	}
}
