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
// order-reversing permutation), held in the lower triangle of l, into U,
// the upper Cholesky factor of H⁻¹, in place: H = J·L·Lᵀ·J gives H⁻¹ =
// (J·L⁻ᵀ·J)(J·L⁻¹·J), and U = J·L⁻¹·J is upper triangular with a positive
// diagonal, so H⁻¹ = UᵀU is its Cholesky factorisation. This costs one
// Cholesky and one triangular inverse (n³/3 multiply-adds) instead of the
// reference's Cholesky, inverse and second Cholesky. It returns l, whose
// upper triangle and diagonal are then U (its strict lower triangle is
// left meaningless), so a factor costs one n×n matrix, not two.
//
// X = L⁻¹ is formed transposed, Xᵀ in the strict upper triangle of l
// (which L does not use) and its diagonal aside, in blocks of factorBlock
// columns of X, which are independent and go to the kernel pool's
// goroutines: the diagonal blocks X_II = L_II⁻¹ by substitution, then,
// block row after block row, X_IC = −X_II·(L_I,C..I−1 · X_C..I−1,C), as
// X_ICᵀ = −(X_C..I−1,Cᵀ · L_I,C..I−1ᵀ)·X_IIᵀ, two kernel.F64MulAdd
// products. U = J·X·J is then Xᵀ reversed and transposed.
func invFactor(l []float64, n int) []float64 {
	const nb = factorBlock
	blocks := (n + nb - 1) / nb
	d := make([]float64, n) // X's diagonal
	// The diagonal blocks, column by column: X_cc = 1/L_cc, and down the
	// column X_ic = −(L_i,c..i−1 · X_c..i−1,c)/L_ii, written at [c][i].
	parallelDynamic(blocks, func(b int, col []float64) {
		b0, b1 := b*nb, min(b*nb+nb, n)
		for c := b0; c < b1; c++ {
			col[c] = 1 / l[c*n+c]
			d[c] = col[c]
			for i := c + 1; i < b1; i++ {
				v := -dot(l[i*n+c:i*n+i], col[c:i]) / l[i*n+i]
				col[i] = v
				l[c*n+i] = v
			}
		}
	}, n)
	// Each diagonal block's X_IIᵀ as its own upper-triangular nb×nb
	// matrix, zeros below the diagonal.
	diagT := make([]float64, blocks*nb*nb)
	for b := 0; b < blocks; b++ {
		b0, b1 := b*nb, min(b*nb+nb, n)
		t := diagT[b*nb*nb : (b+1)*nb*nb]
		for r := b0; r < b1; r++ {
			t[(r-b0)*nb+(r-b0)] = d[r]
			copy(t[(r-b0)*nb+(r-b0)+1:(r-b0)*nb+(b1-b0)], l[r*n+r+1:r*n+b1])
		}
	}
	// Block rows I of X in order; for each, its blocks X_IC, C < I, are
	// independent (they need L, the diagonal blocks and the Xᵀ rows of C
	// made for earlier I) and go to the kernel pool's goroutines, widest
	// first, sharing one transposed copy of L[I, 0:i0].
	pk := make([]float64, n*nb)
	for bi := 1; bi < blocks; bi++ {
		i0, i1 := bi*nb, min(bi*nb+nb, n)
		h := i1 - i0
		// pk = L[i0:i1, 0:i0]ᵀ, i0×h.
		for j := 0; j < h; j++ {
			for p, v := range l[(i0+j)*n : (i0+j)*n+i0] {
				pk[p*h+j] = v
			}
		}
		xii := diagT[bi*nb*nb:]
		parallelDynamic(bi, func(b int, t []float64) {
			c0, c1 := b*nb, min(b*nb+nb, n)
			w := c1 - c0
			k := i0 - c0
			// Tᵀ = Xᵀ[c0:c1, c0:i0] · L[i0:i1, c0:i0]ᵀ: the diagonal block
			// from diagT, the rest from l's upper triangle.
			t = t[:w*h]
			clear(t)
			mustMulAdd(t, h, diagT[b*nb*nb:], nb, pk[c0*h:], h, w, h, w, false)
			if k > w {
				mustMulAdd(t, h, l[c0*n+c1:], n, pk[c1*h:], h, w, h, k-w, false)
			}
			// Xᵀ[c0:c1, i0:i1] = −Tᵀ · X_IIᵀ.
			dst := l[c0*n+i0:]
			for r := 0; r < w; r++ {
				clear(dst[r*n : r*n+h])
			}
			mustMulAdd(dst, n, t, h, xii, nb, w, h, h, true)
		}, nb*nb)
	}
	// U[p][q] = X[n−1−p][n−1−q], held at [n−1−q][n−1−p]: reverse, then
	// transpose, then U's diagonal.
	slices.Reverse(l)
	transpose(l, n)
	for p := 0; p < n; p++ {
		l[p*n+p] = d[n-1-p]
	}
	return l
}

// transpose transposes the n×n row-major a in place, in tiles handed to
// the kernel pool's goroutines.
func transpose(a []float64, n int) {
	const tb = 64
	tiles := (n + tb - 1) / tb
	parallelDynamic(tiles, func(bi int, _ []float64) {
		i0, i1 := bi*tb, min(bi*tb+tb, n)
		for j0 := i0; j0 < n; j0 += tb {
			j1 := min(j0+tb, n)
			for i := i0; i < i1; i++ {
				for j := max(j0, i+1); j < j1; j++ {
					a[i*n+j], a[j*n+i] = a[j*n+i], a[i*n+j]
				}
			}
		}
	}, 0)
}

// factorBlock is the block size of cholesky and invFactor.
const factorBlock = 64

// mustMulAdd is kernel.F64MulAdd on operands the caller sized.
func mustMulAdd(c []float64, ldc int, a []float64, lda int, b []float64, ldb int, m, n, k int, sub bool) {
	if err := kernel.F64MulAdd(c, ldc, a, lda, b, ldb, m, n, k, sub); err != nil {
		panic("gptq: " + err.Error()) // sizes are the caller's own: a bug
	}
}

// cholesky factors the symmetric positive-definite a (n×n, row-major, lower
// triangle read) in place into L with A = L·Lᵀ in the lower triangle;
// the strict upper triangle is left as it was. It reports false when a is
// not positive definite.
//
// It is right-looking in blocks of factorBlock columns: the diagonal block
// is factored by the row-oriented (Cholesky–Crout) recurrence, the rows
// below it are solved against it in parallel, and the trailing lower
// triangle is then updated, A_IJ −= L_IK·L_JKᵀ, in tiles handed to the
// kernel pool's goroutines (kernel.F64MulAdd over a transposed copy of
// the panel).
func cholesky(a []float64, n int) bool {
	const nb = factorBlock
	row := func(i int) []float64 { return a[i*n : i*n+n] }
	var pt []float64 // the panel L[k1:n, k0:k1], transposed
	for k0 := 0; k0 < n; k0 += nb {
		k1 := min(k0+nb, n)
		for i := k0; i < k1; i++ {
			ri := row(i)
			for j := k0; j < i; j++ {
				rj := row(j)
				ri[j] = (ri[j] - dot(ri[k0:j], rj[k0:j])) / rj[j]
			}
			s := ri[i] - dot(ri[k0:i], ri[k0:i])
			if !(s > 0) || math.IsInf(s, 0) {
				return false
			}
			ri[i] = math.Sqrt(s)
		}
		if k1 == n {
			break
		}
		rest := n - k1
		kernel.Parallel(rest, func(lo, hi int) {
			for i := k1 + lo; i < k1+hi; i++ {
				ri := row(i)
				for j := k0; j < k1; j++ {
					rj := row(j)
					ri[j] = (ri[j] - dot(ri[k0:j], rj[k0:j])) / rj[j]
				}
			}
		})
		w := k1 - k0
		if cap(pt) < w*rest {
			pt = make([]float64, w*rest)
		}
		pt = pt[:w*rest]
		for i := k1; i < n; i++ {
			for k, v := range a[i*n+k0 : i*n+k1] {
				pt[k*rest+i-k1] = v
			}
		}
		// Trailing tiles (I, J), J ≤ I, of nb×nb: row band I needs I+1
		// tiles, so bands go out widest-last-first through a counter.
		bands := (rest + nb - 1) / nb
		parallelDynamic(bands, func(q int, tile []float64) {
			bI := bands - 1 - q
			i0, i1 := k1+bI*nb, min(k1+bI*nb+nb, n)
			h := i1 - i0
			// Off-diagonal tiles in one product: columns k1..i0.
			if i0 > k1 {
				mustMulAdd(a[i0*n+k1:], n, a[i0*n+k0:], n, pt, rest, h, i0-k1, w, true)
			}
			// The diagonal tile: its lower triangle only.
			d := tile[:h*h]
			clear(d)
			mustMulAdd(d, h, a[i0*n+k0:], n, pt[i0-k1:], rest, h, h, w, false)
			for r := 0; r < h; r++ {
				ri := a[(i0+r)*n+i0 : (i0+r)*n+i0+r+1]
				for c := range ri {
					ri[c] -= d[r*h+c]
				}
			}
		}, nb*nb)
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
