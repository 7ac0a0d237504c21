package gptq

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/terse-llm/terse/kernel"
)

// Factor is what GPTQ needs from one Hessian, computed once and shared by
// every matrix with the same input (attn_q/k/v, ffn_gate/up): the column
// order, the dead columns and U, the upper Cholesky factor of the damped,
// permuted inverse Hessian (H⁻¹ = UᵀU).
type Factor struct {
	Cols int
	// Perm is the order in which columns are quantized: Perm[p] is the
	// original column quantized p-th (the identity without act-order).
	Perm []int
	// Dead marks columns that never saw a non-zero input (H_jj = 0); their
	// weights are zeroed before quantization, as in the reference.
	Dead []bool
	// Damp is the damping added to the diagonal: Config.Damp·mean(diag H),
	// multiplied by 10 for each retry a non-positive-definite H needed.
	Damp float64
	// Importance is diag(H) in original column order, passed to Grid.Fit
	// (callers may replace it, e.g. with an imatrix).
	Importance []float32

	inv []int     // inv[Perm[p]] = p
	u   []float64 // Cols×Cols row-major, upper triangle valid
}

// NewFactor prepares the Hessian h (cols×cols, row-major, symmetric; XᵀX
// at any positive scale) for GPTQ under cfg. h is not modified.
func NewFactor(h []float64, cols int, cfg Config) (*Factor, error) {
	if cols <= 0 || len(h) != cols*cols {
		return nil, fmt.Errorf("gptq: Hessian has %d values, want %d×%d", len(h), cols, cols)
	}
	cfg = cfg.withDefaults()
	f := &Factor{Cols: cols, Dead: make([]bool, cols), Importance: make([]float32, cols)}
	diag := make([]float64, cols)
	var mean float64
	for j := range diag {
		d := h[j*cols+j]
		if math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
			return nil, fmt.Errorf("gptq: Hessian diagonal %d is %g", j, d)
		}
		f.Importance[j] = float32(d)
		if d == 0 {
			f.Dead[j] = true
			d = 1
		}
		diag[j] = d
		mean += d
	}
	mean /= float64(cols)
	f.Perm = make([]int, cols)
	for j := range f.Perm {
		f.Perm[j] = j
	}
	if cfg.ActOrder {
		// Descending diag(H), ties by index, so the order is reproducible.
		slices.SortStableFunc(f.Perm, func(a, b int) int {
			switch {
			case diag[a] > diag[b]:
				return -1
			case diag[a] < diag[b]:
				return 1
			}
			return 0
		})
	}
	f.inv = make([]int, cols)
	for p, j := range f.Perm {
		f.inv[j] = p
	}
	a := make([]float64, cols*cols)
	f.Damp = cfg.Damp * mean
	for try := 0; ; try++ {
		// A = J·P·(H+λI)·Pᵀ·J, J reversing the order (see invFactor).
		n := cols
		for p := 0; p < n; p++ {
			i := f.Perm[n-1-p]
			for q := 0; q <= p; q++ {
				j := f.Perm[n-1-q]
				v := h[i*n+j]
				if f.Dead[i] || f.Dead[j] {
					v = 0
				}
				if p == q {
					v = diag[i] + f.Damp
				}
				a[p*n+q] = v
			}
		}
		if cholesky(a, n) {
			break
		}
		if try == 4 || f.Damp == 0 {
			return nil, fmt.Errorf("gptq: Hessian is not positive definite even with damping %g (%.3g of its mean diagonal)", f.Damp, f.Damp/mean)
		}
		f.Damp *= 10
	}
	f.u = invFactor(a, cols)
	return f, nil
}

// invFactor turns L, the lower Cholesky factor of A = J·H·J (J the
// order-reversing permutation), into U, the upper Cholesky factor of H⁻¹:
// H = J·L·Lᵀ·J gives H⁻¹ = (J·L⁻ᵀ·J)(J·L⁻¹·J), and U = J·L⁻¹·J is upper
// triangular with a positive diagonal, so H⁻¹ = UᵀU is its Cholesky
// factorisation. This costs one Cholesky and one triangular inverse
// (n³/3 multiply-adds) instead of the reference's Cholesky, inverse and
// second Cholesky.
func invFactor(l []float64, n int) []float64 {
	u := make([]float64, n*n)
	parallelDynamic(n, func(c int, x []float64) {
		// Column c of L⁻¹ by forward substitution: x[i] for i ≥ c.
		x[c] = 1 / l[c*n+c]
		u[(n-1-c)*n+(n-1-c)] = x[c]
		for i := c + 1; i < n; i++ {
			v := -dot(l[i*n+c:i*n+i], x[c:i]) / l[i*n+i]
			x[i] = v
			u[(n-1-i)*n+(n-1-c)] = v
		}
	}, n)
	return u
}

// cholesky factors the symmetric positive-definite a (n×n, row-major, lower
// triangle read) in place into L with A = L·Lᵀ in the lower triangle;
// the strict upper triangle is left as it was. It reports false when a is
// not positive definite.
//
// Rows are done in bands of 64: the part of a band left of its diagonal
// block depends only on finished bands, so its rows run in parallel; the
// small diagonal block is then finished serially.
func cholesky(a []float64, n int) bool {
	const nb = 64
	row := func(i int) []float64 { return a[i*n : i*n+n] }
	for b0 := 0; b0 < n; b0 += nb {
		b1 := min(b0+nb, n)
		if b0 > 0 {
			kernel.Parallel(b1-b0, func(lo, hi int) {
				for i := b0 + lo; i < b0+hi; i++ {
					ri := row(i)
					for j := 0; j < b0; j++ {
						rj := row(j)
						ri[j] = (ri[j] - dot(ri[:j], rj[:j])) / rj[j]
					}
				}
			})
		}
		for i := b0; i < b1; i++ {
			ri := row(i)
			for j := b0; j < i; j++ {
				rj := row(j)
				ri[j] = (ri[j] - dot(ri[:j], rj[:j])) / rj[j]
			}
			s := ri[i] - dot(ri[:i], ri[:i])
			if !(s > 0) || math.IsInf(s, 0) {
				return false
			}
			ri[i] = math.Sqrt(s)
		}
	}
	return true
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

// parallelDynamic runs fn(i, scratch) for i in [0, n), handing indices out
// in increasing order to the kernel pool's goroutines, each with its own scratch
// of the given length.
func parallelDynamic(n int, fn func(i int, scratch []float64), scratch int) {
	var next atomic.Int64
	work := func() {
		buf := make([]float64, scratch)
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(i, buf)
		}
	}
	// Each participant of the pool's job drains the shared counter.
	kernel.Parallel(min(kernel.Threads(), n), func(int, int) { work() })
}

// parallelDynamicRange runs fn on [0, n) in small ranges handed out in
// order to the kernel pool's goroutines, so uneven work stays balanced.
func parallelDynamicRange(n int, fn func(lo, hi int)) {
	t := min(kernel.Threads(), n)
	step := max(1, n/(8*max(t, 1)))
	var next atomic.Int64
	work := func() {
		for {
			lo := int(next.Add(int64(step)) - int64(step))
			if lo >= n {
				return
			}
			fn(lo, min(lo+step, n))
		}
	}
	// Each participant of the pool's job drains the shared counter.
	kernel.Parallel(t, func(int, int) { work() })
}
