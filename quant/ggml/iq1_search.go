package ggml

import (
	"math"
	"slices"
	"sync"
)

// The IQ1 quantizers' search (ggml's quantize_row_iq1_s_impl and
// quantize_row_iq1_m_impl with iq1_find_best_neighbour2).
//
// The IQ1 grid (iq1sGrid) is a set of 2048 points of the lattice of levels
// 0..2 in 8 dimensions (grid value = level − 1). ggml indexes it as it
// indexes the IQ2 grids (coordinates 2·level + 1, iq2Index), keeping the
// neighbours at the 3 closest distinct distances of every off-grid point.
//
// A group's three values are −1, 0, 1 shifted by ±delta, so with the
// weights sorted the best split into three sets is found exhaustively
// over the two boundaries; runs that land off the grid take the
// neighbour with the least weighted error at the group's scale.

// iq1Index is the search index of the IQ1 grid, built on first use.
var iq1Index = sync.OnceValue(func() *iq2Index {
	codes := make([]uint16, len(iq1sGrid))
	for k, g := range iq1sGrid {
		var c uint16
		for i := 0; i < 8; i++ {
			c |= uint16(int8(gridByte(g, i))+1) << (2 * uint(i))
		}
		codes[k] = c
	}
	return newIQ2Index(codes, 3)
})

// iq1Shifted are the three values of a run whose shift is +delta (iq1Plus)
// or −delta (iq1Minus), by level.
var (
	iq1Plus  = [3]float32{-1 + iq1Delta, iq1Delta, 1 + iq1Delta}
	iq1Minus = [3]float32{-1 - iq1Delta, -iq1Delta, 1 - iq1Delta}
)

// iq1BestNeighbour returns the neighbour of off-grid code u with the least
// Σ w_i·(scale·xx[level_i] − x_i)² and stores its levels in l.
func iq1BestNeighbour(x *iq2Index, u int, xval, w []float32, scale float32, xx *[3]float32, l []int8) int {
	best := float32(math.MaxFloat32)
	idx := -1
	for _, k := range x.near[u] {
		var d2 float32
		for i, p := range x.point[k] {
			diff := float32(scale*xx[(p-1)/2]) - xval[i]
			d2 += float32(float32(w[i]*diff) * diff)
		}
		if d2 < best {
			best, idx = d2, int(k)
		}
	}
	if idx < 0 {
		// every error was NaN (overflow near the float32 limit, where
		// ggml aborts): take the first neighbour
		idx = int(x.near[u][0])
	}
	for i, p := range x.point[idx] {
		l[i] = (p - 1) / 2
	}
	return idx
}

// iq1SortedOrder stores in idx the positions of xb in ascending order of
// value (ggml's qsort of (value, position) pairs by value).
func iq1SortedOrder(xb []float32, idx []int) {
	for j := range idx {
		idx[j] = j
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case xb[a] < xb[b]:
			return -1
		case xb[a] > xb[b]:
			return 1
		}
		return 0
	})
}

// iq1Weights fills w with the importance of the group xb: qw_i·√(σ² + x_i²),
// or x_i² without importance.
func iq1Weights(xb, qw []float32, sigma2 float32, w []float32) {
	for i, v := range xb {
		if qw != nil {
			w[i] = qw[i] * sqrt32(sigma2+float32(v*v))
		} else {
			w[i] = v * v
		}
	}
}

// iq1Sigma2 is 2·Σx²/256 over a super-block.
func iq1Sigma2(xbl []float32) float32 {
	var sumx2 float32
	for _, v := range xbl {
		sumx2 += float32(v * v)
	}
	return 2 * sumx2 / 256
}

// maxAbs is the largest |v| of xb.
func maxAbs(xb []float32) float32 {
	m := float32(math.Abs(float64(xb[0])))
	for _, v := range xb[1:] {
		m = max(m, float32(math.Abs(float64(v))))
	}
	return m
}
