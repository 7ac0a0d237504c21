//go:build !amd64 || purego

package kernel

func dotCodes(_ level, w []float32, codes []byte, b int) float32 { return dotCodesGeneric(w, codes, b) }

func axpyCodes(_ level, out []float32, a float32, codes []byte, b int) {
	axpyCodesGeneric(out, a, codes, b)
}

func axpyCodesRows(l level, out, a []float32, codes []byte, b int) {
	axpyCodesRowsGeneric(l, out, a, codes, b)
}

func widenPlanes(_ level, dst []float32, hd int, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	widenPlanesGeneric(dst, hd, rows, rb, lo, nHi, loTab, hiTab, scales)
}

func dotPlanes(_ level, dst, q []float32, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	dotPlanesGeneric(dst, q, rows, rb, lo, nHi, loTab, hiTab, scales)
}

func axpyPlanes(_ level, out, w []float32, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	axpyPlanesGeneric(out, w, rows, rb, lo, nHi, loTab, hiTab, scales)
}
