//go:build amd64 && !purego

package kernel

// widenPlanesAVX512 is WidenPlanes for hd a multiple of 16 and codes of at
// most 5 bits (kvq_planes_amd64.s): masks[c] has a bit for each channel
// of 16-channel group c below nHi; tabs holds the lo table in [0, 32) and
// the hi table in [32, 64).
//
//go:noescape
func widenPlanesAVX512(dst []float32, rows []byte, rb, n, hd, lo int, masks *[16]uint16, tabs *[64]float32, scales *[256]float32)

//go:noescape
func dotPlanesAVX512(dst []float32, rows []byte, rb, n, hd, lo int, masks *[16]uint16, tabs *[64]float32, scales *[256]float32, q *float32)

//go:noescape
func axpyPlanesAVX512(out []float32, rows []byte, rb, n, hd, lo int, masks *[16]uint16, tabs *[64]float32, scales *[256]float32, w *float32)

// planesSIMD reports whether the AVX-512 kernels take rows of hd channels
// and codes of lo bits (+1 for nHi channels).
func planesSIMD(l level, hd, lo, nHi int) bool {
	top := lo
	if nHi > 0 {
		top++
	}
	return l >= levelAVX512 && hd%16 == 0 && hd <= 256 && top <= 5
}

func widenPlanes(l level, dst []float32, hd int, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	if !planesSIMD(l, hd, lo, nHi) {
		widenPlanesGeneric(dst, hd, rows, rb, lo, nHi, loTab, hiTab, scales)
		return
	}
	masks, tabs := planeArgs(hd, lo, nHi, loTab, hiTab)
	widenPlanesAVX512(dst, rows, rb, len(dst)/hd, hd, lo, &masks, &tabs, scales)
}

func dotPlanes(l level, dst, q []float32, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	hd := len(q)
	if !planesSIMD(l, hd, lo, nHi) || len(dst) == 0 {
		dotPlanesGeneric(dst, q, rows, rb, lo, nHi, loTab, hiTab, scales)
		return
	}
	masks, tabs := planeArgs(hd, lo, nHi, loTab, hiTab)
	dotPlanesAVX512(dst, rows, rb, len(dst), hd, lo, &masks, &tabs, scales, &q[0])
}

func axpyPlanes(l level, out, w []float32, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	hd := len(out)
	if !planesSIMD(l, hd, lo, nHi) || len(w) == 0 {
		axpyPlanesGeneric(out, w, rows, rb, lo, nHi, loTab, hiTab, scales)
		return
	}
	masks, tabs := planeArgs(hd, lo, nHi, loTab, hiTab)
	axpyPlanesAVX512(out, rows, rb, len(w), hd, lo, &masks, &tabs, scales, &w[0])
}

// planeArgs are the AVX-512 kernels' hi-lane masks and tables.
func planeArgs(hd, lo, nHi int, loTab, hiTab []float32) (masks [16]uint16, tabs [64]float32) {
	for c := range hd / 16 {
		if m := nHi - 16*c; m >= 16 {
			masks[c] = 0xffff
		} else if m > 0 {
			masks[c] = 1<<m - 1
		}
	}
	copy(tabs[:32], loTab[:1<<lo])
	if nHi > 0 {
		copy(tabs[32:], hiTab[:2<<lo])
	}
	return masks, tabs
}
