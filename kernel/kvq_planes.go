package kernel

import "fmt"

// Bit-plane codes (the rq cache's rows in package kv): a row of hd
// channels is one scale byte e followed by the bits of every channel's
// code, plane by plane: bit b (b < lo) of channel i's code is bit 8+b·hd+i
// of the row, least significant bit first, and channels i < nHi have one
// more bit, bit lo, at bit 8+lo·hd+i. Channel i stands for
// scales[e]·tab[code] with tab the hi table for i < nHi and the lo table
// otherwise. Planes let SIMD code load the same bit of 16 channels as one
// 16-bit mask, whatever the bit width.

// PlaneRowBytes is the size of a bit-plane row of hd channels: the scale
// byte and lo·hd+nHi bits.
func PlaneRowBytes(hd, lo, nHi int) int { return 1 + (lo*hd+nHi+7)/8 }

// PlaneReadBytes is how many bytes of a row WidenPlanes may read: the row,
// and up to one byte past it when the extra plane ends inside a 16-channel
// group. A buffer of rows must extend that far past its last row's start.
func PlaneReadBytes(hd, lo, nHi int) int {
	n := PlaneRowBytes(hd, lo, nHi)
	if hd%16 == 0 && nHi > 0 {
		n = max(n, 1+lo*hd/8+2*((nHi+15)/16))
	}
	return n
}

// WidenPlanes widens the len(dst)/hd bit-plane rows that start rb bytes
// apart in rows into dst (row r at dst[r·hd:]): dst[r·hd+i] =
// scales[e_r]·tab[code_{r,i}], tab = hi for i < nHi, else lo. lo has at
// least 2^lo levels and, when nHi > 0, hi at least 2^(lo+1); 1 ≤ lo ≤ 8,
// 0 ≤ nHi ≤ hd, and lo+1 ≤ 8 when nHi > 0. rows must hold
// PlaneReadBytes past the last row's start.
func WidenPlanes(dst []float32, hd int, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	if hd <= 0 || len(dst)%hd != 0 || lo < 1 || lo > 8 || nHi < 0 || nHi > hd || (nHi > 0 && lo > 7) || rb < PlaneRowBytes(hd, lo, nHi) {
		panic(fmt.Sprintf("kernel.WidenPlanes: %d floats of %d-channel rows of %d bytes, %d bits (+1 for %d)", len(dst), hd, rb, lo, nHi))
	}
	n := len(dst) / hd
	if n == 0 {
		return
	}
	if len(rows) < (n-1)*rb+PlaneReadBytes(hd, lo, nHi) || len(loTab) < 1<<lo || (nHi > 0 && len(hiTab) < 2<<lo) {
		panic(fmt.Sprintf("kernel.WidenPlanes: %d rows of %d bytes in %d bytes, tables of %d and %d levels for %d bits", n, rb, len(rows), len(loTab), len(hiTab), lo))
	}
	widenPlanes(active, dst, hd, rows, rb, lo, nHi, loTab, hiTab, scales)
}

// widenPlanesGeneric is WidenPlanes in plain Go, eight channels of each
// plane (one byte) at a time where the planes are byte-aligned.
func widenPlanesGeneric(dst []float32, hd int, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	var code [256]uint8
	for r := 0; r < len(dst)/hd; r++ {
		row := rows[r*rb:]
		s := scales[row[0]]
		c := code[:hd]
		clear(c)
		for b := 0; b <= lo; b++ {
			m := hd
			if b == lo {
				m = nHi
			}
			base := 8 + b*hd
			for i := 0; i < m; i++ {
				pos := base + i
				c[i] |= (row[pos>>3] >> (pos & 7) & 1) << b
			}
		}
		out := dst[r*hd : (r+1)*hd]
		for i := 0; i < nHi; i++ {
			out[i] = s * hiTab[c[i]]
		}
		for i := nHi; i < hd; i++ {
			out[i] = s * loTab[c[i]]
		}
	}
}
