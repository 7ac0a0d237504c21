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
	if hd <= 0 || len(dst)%hd != 0 {
		panic(fmt.Sprintf("kernel.WidenPlanes: %d floats of %d-channel rows", len(dst), hd))
	}
	checkPlanes("WidenPlanes", len(dst)/hd, hd, rows, rb, lo, nHi, loTab, hiTab)
	widenPlanes(active, dst, hd, rows, rb, lo, nHi, loTab, hiTab, scales)
}

// DotPlanes sets dst[r] = scales[e_r]·Σ_i q[i]·tab[code_{r,i}] for the
// len(dst) bit-plane rows of len(q) channels that start rb bytes apart in
// rows (tables and rows as WidenPlanes's).
func DotPlanes(dst, q []float32, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	checkPlanes("DotPlanes", len(dst), len(q), rows, rb, lo, nHi, loTab, hiTab)
	dotPlanes(active, dst, q, rows, rb, lo, nHi, loTab, hiTab, scales)
}

// AxpyPlanes sets out[i] += Σ_r w[r]·scales[e_r]·tab[code_{r,i}] over the
// len(w) bit-plane rows of len(out) channels that start rb bytes apart in
// rows (tables and rows as WidenPlanes's): a weighted sum of the rows.
func AxpyPlanes(out, w []float32, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	checkPlanes("AxpyPlanes", len(w), len(out), rows, rb, lo, nHi, loTab, hiTab)
	axpyPlanes(active, out, w, rows, rb, lo, nHi, loTab, hiTab, scales)
}

// checkPlanes panics unless n rows of hd channels and the tables are as
// WidenPlanes's documentation asks.
func checkPlanes(fn string, n, hd int, rows []byte, rb, lo, nHi int, loTab, hiTab []float32) {
	if hd <= 0 || lo < 1 || lo > 8 || nHi < 0 || nHi > hd || (nHi > 0 && lo > 7) || rb < PlaneRowBytes(hd, lo, nHi) {
		panic(fmt.Sprintf("kernel.%s: %d-channel rows of %d bytes, %d bits (+1 for %d channels)", fn, hd, rb, lo, nHi))
	}
	if n > 0 && (len(rows) < (n-1)*rb+PlaneReadBytes(hd, lo, nHi) || len(loTab) < 1<<lo || (nHi > 0 && len(hiTab) < 2<<lo)) {
		panic(fmt.Sprintf("kernel.%s: %d rows of %d bytes in %d bytes, tables of %d and %d levels for %d bits", fn, n, rb, len(rows), len(loTab), len(hiTab), lo))
	}
}

// dotPlanesGeneric is DotPlanes in plain Go: each row widened, then dotted
// with q in float32, in order.
func dotPlanesGeneric(dst, q []float32, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	var buf [256]float32
	hd := len(q)
	for r := range dst {
		x := buf[:hd]
		widenPlanesGeneric(x, hd, rows[r*rb:], rb, lo, nHi, loTab, hiTab, &unitScales)
		var s float32
		for i, v := range x {
			s += q[i] * v
		}
		dst[r] = scales[rows[r*rb]] * s
	}
}

// axpyPlanesGeneric is AxpyPlanes in plain Go.
func axpyPlanesGeneric(out, w []float32, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	var buf [256]float32
	hd := len(out)
	for r, a := range w {
		x := buf[:hd]
		widenPlanesGeneric(x, hd, rows[r*rb:], rb, lo, nHi, loTab, hiTab, &unitScales)
		a *= scales[rows[r*rb]]
		for i, v := range x {
			out[i] += a * v
		}
	}
}

// unitScales maps every scale byte to 1.
var unitScales = func() (t [256]float32) {
	for i := range t {
		t[i] = 1
	}
	return t
}()

// widenPlanesGeneric is WidenPlanes in plain Go: where the planes are
// byte-aligned (hd a multiple of 8), each plane byte is spread into eight
// code bytes at once (spread8); otherwise bit by bit.
func widenPlanesGeneric(dst []float32, hd int, rows []byte, rb, lo, nHi int, loTab, hiTab []float32, scales *[256]float32) {
	var code [256 / 8]uint64 // eight channels' codes, a byte each
	for r := 0; r < len(dst)/hd; r++ {
		row := rows[r*rb:]
		s := scales[row[0]]
		out := dst[r*hd : (r+1)*hd]
		if hd%8 != 0 {
			for i := range out {
				c, bits, tab := 0, lo, loTab
				if i < nHi {
					bits, tab = lo+1, hiTab
				}
				for b := 0; b < bits; b++ {
					pos := 8 + b*hd + i
					c |= int(row[pos>>3]>>(pos&7)&1) << b
				}
				out[i] = s * tab[c]
			}
			continue
		}
		pb, g := hd/8, code[:hd/8]
		clear(g)
		for b := 0; b < lo; b++ {
			plane := row[1+b*pb : 1+(b+1)*pb]
			for j, x := range plane {
				g[j] |= spread8[x] << b
			}
		}
		if nHi > 0 {
			plane := row[1+lo*pb:]
			for j := 0; j < (nHi+7)/8; j++ {
				x := plane[j]
				if m := nHi - 8*j; m < 8 {
					x &= 1<<m - 1
				}
				g[j] |= spread8[x] << lo
			}
		}
		for j, c := range g {
			o := out[8*j : 8*j+8]
			for k := range o {
				i := 8*j + k
				if i < nHi {
					o[k] = s * hiTab[uint8(c>>(8*k))]
				} else {
					o[k] = s * loTab[uint8(c>>(8*k))]
				}
			}
		}
	}
}

// spread8[x] has bit k of x at bit 8k.
var spread8 = func() (t [256]uint64) {
	for x := range t {
		for k := 0; k < 8; k++ {
			t[x] |= uint64(x>>k&1) << (8 * k)
		}
	}
	return t
}()
