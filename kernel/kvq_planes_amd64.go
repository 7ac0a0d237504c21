//go:build amd64 && !purego

package kernel

// widenPlanesAVX512 is WidenPlanes for hd a multiple of 16 and codes of at
// most 5 bits (kvq_planes_amd64.s): masks[c] has a bit for each channel
// of 16-channel group c below nHi; tabs holds the lo table in [0, 32) and
// the hi table in [32, 64).
//
//go:noescape
func widenPlanesAVX512(dst []float32, rows []byte, rb, n, hd, lo int, masks *[16]uint16, tabs *[64]float32, scales *[256]float32)

func widenPlanes(l level, dst []float32, hd int, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	top := lo
	if nHi > 0 {
		top++
	}
	if l < levelAVX512 || hd%16 != 0 || hd > 256 || top > 5 {
		widenPlanesGeneric(dst, hd, rows, rb, lo, nHi, loTab, hiTab, scales)
		return
	}
	var masks [16]uint16
	for c := range hd / 16 {
		if m := nHi - 16*c; m >= 16 {
			masks[c] = 0xffff
		} else if m > 0 {
			masks[c] = 1<<m - 1
		}
	}
	var tabs [64]float32
	copy(tabs[:32], loTab[:1<<lo])
	if nHi > 0 {
		copy(tabs[32:], hiTab[:2<<lo])
	}
	widenPlanesAVX512(dst, rows, rb, len(dst)/hd, hd, lo, &masks, &tabs, scales)
}
