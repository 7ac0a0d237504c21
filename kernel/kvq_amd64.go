//go:build amd64 && !purego

package kernel

// AVX2 kernels for packed 2- and 4-bit codes (kvq_amd64.s); 8-bit codes
// use the generic loop.

//go:noescape
func dotCodes4AVX2(w []float32, codes []byte) float32

//go:noescape
func dotCodes2AVX2(w []float32, codes []byte) float32

//go:noescape
func axpyCodes4AVX2(out []float32, a float32, codes []byte)

//go:noescape
func axpyCodes2AVX2(out []float32, a float32, codes []byte)

func dotCodes(l level, w []float32, codes []byte, b int) float32 {
	if l >= levelAVX2 {
		switch b {
		case 4:
			return dotCodes4AVX2(w, codes)
		case 2:
			return dotCodes2AVX2(w, codes)
		}
	}
	return dotCodesGeneric(w, codes, b)
}

func axpyCodes(l level, out []float32, a float32, codes []byte, b int) {
	if l >= levelAVX2 {
		switch b {
		case 4:
			axpyCodes4AVX2(out, a, codes)
			return
		case 2:
			axpyCodes2AVX2(out, a, codes)
			return
		}
	}
	axpyCodesGeneric(out, a, codes, b)
}

//go:noescape
func axpyCodesRows4AVX2(out, a []float32, codes []byte)

//go:noescape
func axpyCodesRows2AVX2(out, a []float32, codes []byte)

func axpyCodesRows(l level, out, a []float32, codes []byte, b int) {
	if l >= levelAVX2 {
		switch b {
		case 4:
			axpyCodesRows4AVX2(out, a, codes)
			return
		case 2:
			axpyCodesRows2AVX2(out, a, codes)
			return
		}
	}
	axpyCodesRowsGeneric(l, out, a, codes, b)
}
