package gptq

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/kernel"
)

// refCholesky is the unblocked row-oriented Cholesky–Crout recurrence, the
// reference for cholesky.
func refCholesky(a []float64, n int) bool {
	for i := 0; i < n; i++ {
		ri := a[i*n : i*n+n]
		for j := 0; j < i; j++ {
			rj := a[j*n : j*n+n]
			ri[j] = (ri[j] - dot(ri[:j], rj[:j])) / rj[j]
		}
		s := ri[i] - dot(ri[:i], ri[:i])
		if !(s > 0) || math.IsInf(s, 0) {
			return false
		}
		ri[i] = math.Sqrt(s)
	}
	return true
}

// refInvFactor is U = J·L⁻¹·J by forward substitution one column at a
// time, the reference for invFactor.
func refInvFactor(l []float64, n int) []float64 {
	u := make([]float64, n*n)
	x := make([]float64, n)
	for c := 0; c < n; c++ {
		x[c] = 1 / l[c*n+c]
		u[(n-1-c)*n+(n-1-c)] = x[c]
		for i := c + 1; i < n; i++ {
			v := -dot(l[i*n+c:i*n+i], x[c:i]) / l[i*n+i]
			x[i] = v
			u[(n-1-i)*n+(n-1-c)] = v
		}
	}
	return u
}

// spd is XᵀX/k + ridge·I for a random k×n X (lower triangle and all), with
// column scales spread over scale decades, and its upper triangle marked
// with NaN where the factorisation must not look.
func spd(r *rand.Rand, n, k int, ridge, decades float64) []float64 {
	x := make([]float64, k*n)
	for j := 0; j < n; j++ {
		s := math.Pow(10, decades*(r.Float64()-0.5))
		for t := 0; t < k; t++ {
			x[t*n+j] = s * r.NormFloat64()
		}
	}
	a := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			var v float64
			for t := 0; t < k; t++ {
				v += x[t*n+i] * x[t*n+j]
			}
			a[i*n+j] = v / float64(k)
		}
		a[i*n+i] += ridge
		for j := i + 1; j < n; j++ {
			a[i*n+j] = math.NaN()
		}
	}
	return a
}

func forLevels(t *testing.T, f func(t *testing.T)) {
	saved := kernel.CurrentConfig()
	defer func() {
		if err := kernel.Configure(saved); err != nil {
			t.Fatal(err)
		}
	}()
	for _, lvl := range []string{"generic", "avx2", "avx512"} {
		c := saved
		c.Level = lvl
		if err := kernel.Configure(c); err != nil {
			t.Fatal(err)
		}
		t.Run(lvl, f)
	}
}

// The blocked Cholesky and triangular inverse agree with the unblocked
// recurrences to a few ulps of the condition-scaled entries, on sizes
// below, at and across block edges, with ill-scaled columns, and leave
// the strict upper triangle alone.
func TestBlockedFactorMatchesReference(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		for _, tc := range []struct {
			n, k           int
			ridge, decades float64
		}{
			{1, 3, 0.1, 0}, {5, 2, 0.01, 0}, {factorBlock - 1, 80, 0.01, 0},
			{factorBlock, 70, 0.01, 2}, {factorBlock + 1, 200, 0.001, 0},
			{2*factorBlock + 7, 150, 0.01, 3}, {300, 40, 0.05, 1},
		} {
			t.Run(fmt.Sprintf("n%d", tc.n), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.k)))
				a := spd(r, tc.n, tc.k, tc.ridge, tc.decades)
				want := append([]float64(nil), a...)
				if !cholesky(a, tc.n) || !refCholesky(want, tc.n) {
					t.Fatal("positive definite matrix refused")
				}
				n := tc.n
				var lmax float64
				for i := 0; i < n; i++ {
					for j := 0; j <= i; j++ {
						lmax = max(lmax, math.Abs(want[i*n+j]))
					}
					for j := i + 1; j < n; j++ {
						if !math.IsNaN(a[i*n+j]) {
							t.Fatalf("upper triangle [%d,%d] written: %g", i, j, a[i*n+j])
						}
					}
				}
				for i := 0; i < n; i++ {
					for j := 0; j <= i; j++ {
						if d := math.Abs(a[i*n+j] - want[i*n+j]); d > 1e-11*lmax {
							t.Fatalf("L[%d,%d] = %.17g, reference %.17g", i, j, a[i*n+j], want[i*n+j])
						}
					}
				}
				ref := refInvFactor(want, n)
				u := invFactor(append([]float64(nil), want...), n)
				var umax float64
				for _, v := range ref {
					umax = max(umax, math.Abs(v))
				}
				for i := 0; i < n; i++ {
					for j := i; j < n; j++ { // the upper triangle is U
						if d := math.Abs(u[i*n+j] - ref[i*n+j]); !(d <= 1e-10*umax) {
							t.Fatalf("U[%d,%d] = %.17g, reference %.17g", i, j, u[i*n+j], ref[i*n+j])
						}
					}
				}
			})
		}
	})
}

// Not positive definite: refused, as by the reference, wherever the bad
// pivot falls (first block, a later block).
func TestBlockedCholeskyRefuses(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		for _, bad := range []int{0, 3, factorBlock + 5, 2*factorBlock + 1} {
			n := 2*factorBlock + 10
			r := rand.New(rand.NewPCG(7, uint64(bad)))
			a := spd(r, n, n+5, 0.1, 0)
			a[bad*n+bad] = -1
			want := append([]float64(nil), a...)
			if got, ref := cholesky(a, n), refCholesky(want, n); got || ref {
				t.Errorf("pivot %d negative: cholesky %v, reference %v", bad, got, ref)
			}
		}
	})
}

// BenchmarkFactor times NewFactor's Cholesky and inverse (blocked) against
// the unblocked recurrences, at a 1B model's widths.
func BenchmarkFactor(b *testing.B) {
	for _, n := range []int{2048, 4096} {
		r := rand.New(rand.NewPCG(1, uint64(n)))
		a := spd(r, n, 8, 1, 0)
		for _, impl := range []string{"blocked", "reference"} {
			b.Run(fmt.Sprintf("%s/n%d", impl, n), func(b *testing.B) {
				w := make([]float64, len(a))
				for b.Loop() {
					copy(w, a)
					if impl == "blocked" {
						cholesky(w, n)
						invFactor(w, n)
					} else {
						refCholesky(w, n)
						refInvFactor(w, n)
					}
				}
			})
		}
	}
}
