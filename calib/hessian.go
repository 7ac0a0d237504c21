package calib

import (
	"sync/atomic"

	"github.com/terse-llm/terse/kernel"
)

// addXtX adds XᵀX to the upper triangle (j ≥ i) of the cols×cols row-major
// h, where X is n×cols and given transposed: xt[j*n+t] = X[t][j]. The
// strictly lower triangle of h is left untouched.
//
// The work is a symmetric rank-n update (BLAS dsyrk) done in register tiles
// of 4 rows × 2 columns of h, so every pair of loaded samples feeds eight
// multiply-adds; bands of 4 rows of h are handed to the kernel pool's
// goroutines from a shared counter, widest band first, which balances the
// triangle.
func addXtX(h []float64, cols int, xt []float64, n int) {
	if n == 0 || cols == 0 {
		return
	}
	bands := (cols + 3) / 4
	workers := min(kernel.Threads(), bands)
	// Below about a million multiply-adds goroutines cost more than they save.
	if cols*cols*n < 1<<20 {
		workers = 1
	}
	var next atomic.Int64
	work := func() {
		for {
			b := int(next.Add(1) - 1)
			if b >= bands {
				return
			}
			syrkBand(h, cols, xt, n, 4*b, min(4*b+4, cols))
		}
	}
	if workers <= 1 {
		work()
		return
	}
	// Each participant of the pool's job drains the shared counter.
	kernel.Parallel(workers, func(int, int) { work() })
}

// syrkBand updates rows [i0, i1) of the upper triangle of h.
func syrkBand(h []float64, cols int, xt []float64, n int, i0, i1 int) {
	col := func(j int) []float64 { return xt[j*n : j*n+n : j*n+n] }
	if i1-i0 < 4 {
		for i := i0; i < i1; i++ {
			a := col(i)
			for j := i; j < cols; j++ {
				h[i*cols+j] += dot(a, col(j))
			}
		}
		return
	}
	a0, a1, a2, a3 := col(i0), col(i0+1), col(i0+2), col(i0+3)
	// The 4×4 diagonal block: its upper part only.
	for i := i0; i < i0+4; i++ {
		for j := i; j < i0+4; j++ {
			h[i*cols+j] += dot(col(i), col(j))
		}
	}
	j := i0 + 4
	for ; j+2 <= cols; j += 2 {
		b0, b1 := col(j), col(j+1)
		b1 = b1[:len(b0)]
		a0, a1, a2, a3 := a0[:len(b0)], a1[:len(b0)], a2[:len(b0)], a3[:len(b0)]
		var s00, s01, s10, s11, s20, s21, s30, s31 float64
		for t, y0 := range b0 {
			y1 := b1[t]
			x0, x1, x2, x3 := a0[t], a1[t], a2[t], a3[t]
			s00 += x0 * y0
			s01 += x0 * y1
			s10 += x1 * y0
			s11 += x1 * y1
			s20 += x2 * y0
			s21 += x2 * y1
			s30 += x3 * y0
			s31 += x3 * y1
		}
		h[i0*cols+j] += s00
		h[i0*cols+j+1] += s01
		h[(i0+1)*cols+j] += s10
		h[(i0+1)*cols+j+1] += s11
		h[(i0+2)*cols+j] += s20
		h[(i0+2)*cols+j+1] += s21
		h[(i0+3)*cols+j] += s30
		h[(i0+3)*cols+j+1] += s31
	}
	for ; j < cols; j++ {
		b := col(j)
		h[i0*cols+j] += dot(a0, b)
		h[(i0+1)*cols+j] += dot(a1, b)
		h[(i0+2)*cols+j] += dot(a2, b)
		h[(i0+3)*cols+j] += dot(a3, b)
	}
}

func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
