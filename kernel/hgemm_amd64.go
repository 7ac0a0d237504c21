//go:build amd64 && !purego

package kernel

import "github.com/terse-llm/terse/tensor"

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
func halfFused(l level, dt tensor.DType) bool {
	return l == levelAVX512 && (dt == tensor.F16 || dt == tensor.BF16)
}

// halfMicro runs the fused kernel for dt with four tokens (nt > 1; out as
// micro's) or one (nt == 1; out[i] for row i).
func halfMicro(dt tensor.DType, nt int, w *[4]*byte, x *[4]*float32, k int, out *[16]float32) {
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
