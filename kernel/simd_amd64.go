//go:build amd64 && !purego

package kernel

import "unsafe"

// Implemented in simd_amd64.s. Slice arguments must have the lengths the
// exported wrappers guarantee (len(b) >= len(a), len(src) >= 2·len(dst), ...).

//go:noescape
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

//go:noescape
func xgetbv() (eax, edx uint32)

//go:noescape
func dotAVX2(a, b []float32) float32

//go:noescape
func dotAVX512(a, b []float32) float32

//go:noescape
func axpyAVX2(a float32, x, y []float32)

//go:noescape
func axpyAVX512(a float32, x, y []float32)

//go:noescape
func f16ToF32AVX2(dst []float32, src []byte)

//go:noescape
func f16ToF32AVX512(dst []float32, src []byte)

//go:noescape
func bf16ToF32AVX2(dst []float32, src []byte)

//go:noescape
func bf16ToF32AVX512(dst []float32, src []byte)

//go:noescape
func dotF16AVX2(w []byte, x []float32) float32

//go:noescape
func dotF16AVX512(w []byte, x []float32) float32

//go:noescape
func dotBF16AVX2(w []byte, x []float32) float32

//go:noescape
func dotBF16AVX512(w []byte, x []float32) float32

//go:noescape
func gemm4x4AVX512(w, x *[4]*float32, k int, out *[16]float32)

//go:noescape
func gemm4x3AVX2(w, x *[4]*float32, k int, out *[16]float32)

// detect reads CPUID and XCR0: AVX2 needs AVX2, FMA and F16C with the OS
// saving YMM state; AVX-512 additionally needs F, BW, VL and DQ with the OS
// saving opmask and ZMM state.
func detect() level {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return levelGeneric
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
		f16c    = 1 << 29
	)
	if ecx1&(fma|osxsave|avx|f16c) != fma|osxsave|avx|f16c {
		return levelGeneric
	}
	xcr0, _ := xgetbv()
	if xcr0&0x6 != 0x6 { // XMM and YMM state
		return levelGeneric
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const (
		avx2     = 1 << 5
		avx512f  = 1 << 16
		avx512dq = 1 << 17
		avx512bw = 1 << 30
		avx512vl = 1 << 31
	)
	if ebx7&avx2 == 0 {
		return levelGeneric
	}
	const a512 = avx512f | avx512dq | avx512bw | avx512vl
	if ebx7&a512 == a512 && xcr0&0xe0 == 0xe0 { // opmask, ZMM0-15, ZMM16-31
		return levelAVX512
	}
	return levelAVX2
}

func dot(l level, a, b []float32) float32 {
	switch l {
	case levelAVX512:
		return dotAVX512(a, b)
	case levelAVX2:
		return dotAVX2(a, b)
	}
	return dotGeneric(a, b)
}

func axpy(l level, a float32, x, y []float32) {
	switch l {
	case levelAVX512:
		axpyAVX512(a, x, y)
	case levelAVX2:
		axpyAVX2(a, x, y)
	default:
		axpyGeneric(a, x, y)
	}
}

func f16ToF32(l level, dst []float32, src []byte) {
	switch l {
	case levelAVX512:
		f16ToF32AVX512(dst, src)
	case levelAVX2:
		f16ToF32AVX2(dst, src)
	default:
		f16ToF32Generic(dst, src)
	}
}

func bf16ToF32(l level, dst []float32, src []byte) {
	switch l {
	case levelAVX512:
		bf16ToF32AVX512(dst, src)
	case levelAVX2:
		bf16ToF32AVX2(dst, src)
	default:
		bf16ToF32Generic(dst, src)
	}
}

func dotF16(l level, w []byte, x []float32) float32 {
	switch l {
	case levelAVX512:
		return dotF16AVX512(w, x)
	case levelAVX2:
		return dotF16AVX2(w, x)
	}
	return dotF16Generic(w, x)
}

func dotBF16(l level, w []byte, x []float32) float32 {
	switch l {
	case levelAVX512:
		return dotBF16AVX512(w, x)
	case levelAVX2:
		return dotBF16AVX2(w, x)
	}
	return dotBF16Generic(w, x)
}

// microNR is how many activation vectors one micro-kernel call covers.
func microNR(l level) int {
	if l == levelAVX2 {
		return 3
	}
	return 4
}

// micro sets out[4*i+j] = dot(w[i][:k], x[j][:k]) for i < 4, j < microNR(l).
func micro(l level, w, x *[4]*float32, k int, out *[16]float32) {
	switch l {
	case levelAVX512:
		gemm4x4AVX512(w, x, k, out)
	case levelAVX2:
		gemm4x3AVX2(w, x, k, out)
		if k8 := k &^ 7; k8 < k {
			for i := 0; i < 4; i++ {
				wi := unsafe.Slice(w[i], k)[k8:]
				for j := 0; j < 3; j++ {
					xj := unsafe.Slice(x[j], k)[k8:]
					s := out[4*i+j]
					for p, v := range wi {
						s += v * xj[p]
					}
					out[4*i+j] = s
				}
			}
		}
	default:
		gemm4x4Generic(w, x, k, out)
	}
}

//go:noescape
func expSubAVX512(x []float32, m float32) float32

//go:noescape
func siluMulAVX512(g, u []float32)

//go:noescape
func wsumAVX512(dst, p []float32, v *float32, vs int)

//go:noescape
func maxAVX512(x []float32) float32

//go:noescape
func expSubAVX2(x []float32, m float32) float32

//go:noescape
func siluMulAVX2(g, u []float32)

//go:noescape
func maxAVX2(x []float32) float32

func maxf(l level, x []float32) float32 {
	switch l {
	case levelAVX512:
		return maxAVX512(x)
	case levelAVX2:
		return maxAVX2(x)
	}
	return maxGeneric(x)
}

func expSub(l level, x []float32, m float32) float32 {
	switch l {
	case levelAVX512:
		return expSubAVX512(x, m)
	case levelAVX2:
		n := len(x) &^ 7
		return expSubAVX2(x[:n], m) + expSubGeneric(x[n:], m)
	}
	return expSubGeneric(x, m)
}

func siluMul(l level, g, u []float32) {
	switch l {
	case levelAVX512:
		siluMulAVX512(g, u)
		return
	case levelAVX2:
		n := len(g) &^ 7
		siluMulAVX2(g[:n], u[:n])
		siluMulGeneric(g[n:], u[n:])
		return
	}
	siluMulGeneric(g, u)
}

// wsum is WeightedSum after its checks (len(p) > 0).
func wsum(l level, dst, p, v []float32, vs int) {
	if l == levelAVX512 && len(dst) > 0 {
		wsumAVX512(dst, p, &v[0], vs)
		return
	}
	wsumGeneric(l, dst, p, v, vs)
}

// spinPause hints the core that it is in a spin-wait loop.
func spinPause()
