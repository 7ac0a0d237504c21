//go:build amd64 && !purego

package kernel

import (
	"encoding/binary"
	"math"
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
// AVX-512 and AVX2 (simd_amd64.s) have kernels for both half types.
func halfFused(l level, dt tensor.DType) bool {
	return l >= levelAVX2 && (dt == tensor.F16 || dt == tensor.BF16)
}

//go:noescape
func hgemmF16x3AVX2(w *[4]*byte, x *[4]*float32, k int, out *[16]float32)

//go:noescape
func hgemmBF16x3AVX2(w *[4]*byte, x *[4]*float32, k int, out *[16]float32)

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
		halfMicroAVX2(dt, w, x, k, out)
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

// halfMicroAVX2 is halfMicro on AVX2: the three-token kernel over the
// whole vectors of k (8 for F16, the 32 of a permuted block for BF16),
// then the rest of k in Go, element by element in order (BF16 activations
// read at their permuted places).
func halfMicroAVX2(dt tensor.DType, w *[4]*byte, x *[4]*float32, k int, out *[16]float32) {
	kv := k &^ 7
	if dt == tensor.BF16 {
		kv = k &^ (halfBlock - 1)
		hgemmBF16x3AVX2(w, x, k, out)
	} else {
		hgemmF16x3AVX2(w, x, k, out)
	}
	if kv == k {
		return
	}
	xlen := k
	if dt == tensor.BF16 {
		xlen = kv + halfBlock // the permuted block, zero-padded
	}
	for i := 0; i < 4; i++ {
		wi := unsafe.Slice(w[i], 2*k)
		for j := 0; j < 3; j++ {
			xj := unsafe.Slice(x[j], xlen)
			s := out[4*i+j]
			for p := kv; p < k; p++ {
				h := binary.LittleEndian.Uint16(wi[2*p:])
				if dt == tensor.BF16 {
					q := p - kv
					s += math.Float32frombits(uint32(h)<<16) * xj[kv+q/2+(q&1)*(halfBlock/2)]
				} else {
					s += tensor.F16ToF32(h) * xj[p]
				}
			}
			out[4*i+j] = s
		}
	}
}
