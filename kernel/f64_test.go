package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refF64MulAdd is the plain triple loop F64MulAdd is checked against, and
// the bound on its rounding: Σ_p |A[i][p]·B[p][j]| per entry.
func refF64MulAdd(c []float64, ldc int, a []float64, lda int, b []float64, ldb int, m, n, k int, sub bool) []float64 {
	mag := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, t float64
			for p := 0; p < k; p++ {
				s += a[i*lda+p] * b[p*ldb+j]
				t += math.Abs(a[i*lda+p] * b[p*ldb+j])
			}
			if sub {
				s = -s
			}
			c[i*ldc+j] += s
			mag[i*n+j] = t
		}
	}
	return mag
}

func TestF64MulAdd(t *testing.T) {
	cases := []struct {
		name    string
		m, n, k int
		fill    func(r *rand.Rand, i int) float64
	}{
		{"one tile", 4, 8, 16, nil},
		{"edges", 7, 13, 5, nil},
		{"k blocks", 9, 17, 2*f64KBlock + 3, nil},
		{"single", 1, 1, 1, nil},
		{"wide", 12, 64, 300, nil},
		{"zeros", 8, 16, 40, func(*rand.Rand, int) float64 { return 0 }},
		{"extremes", 5, 11, 37, func(_ *rand.Rand, i int) float64 { return []float64{65504, -65504, 1e-300, 0, -3}[i%5] }},
		{"huge", 4, 8, 9, func(r *rand.Rand, i int) float64 { return (r.Float64() - 0.5) * 1e150 }},
	}
	for _, l := range levels() {
		for _, tc := range cases {
			for _, sub := range []bool{false, true} {
				r := rand.New(rand.NewPCG(uint64(tc.m), uint64(tc.k)))
				lda, ldb, ldc := tc.k+3, tc.n+5, tc.n+2
				gen := func(n int) []float64 {
					v := make([]float64, n)
					for i := range v {
						if tc.fill != nil {
							v[i] = tc.fill(r, i)
						} else {
							v[i] = r.NormFloat64()
						}
					}
					return v
				}
				a, b, c := gen(tc.m*lda), gen(tc.k*ldb), gen(tc.m*ldc)
				want := append([]float64(nil), c...)
				mag := refF64MulAdd(want, ldc, a, lda, b, ldb, tc.m, tc.n, tc.k, sub)
				withLevel(t, l, func() {
					if err := F64MulAdd(c, ldc, a, lda, b, ldb, tc.m, tc.n, tc.k, sub); err != nil {
						t.Fatal(err)
					}
				})
				for i := 0; i < tc.m; i++ {
					for j := 0; j < ldc; j++ {
						got, w := c[i*ldc+j], want[i*ldc+j]
						if j >= tc.n {
							if math.Float64bits(got) != math.Float64bits(w) {
								t.Fatalf("%s %s: C[%d][%d] outside the product changed", l, tc.name, i, j)
							}
							continue
						}
						bound := 4 * float64(tc.k+2) * 0x1p-52 * (mag[i*tc.n+j] + math.Abs(w))
						if d := math.Abs(got - w); !(d <= bound) {
							t.Fatalf("%s %s sub=%v: C[%d][%d] = %g, reference %g (bound %g)", l, tc.name, sub, i, j, got, w, bound)
						}
					}
				}
			}
		}
	}
}

func TestF64MulAddBadArgs(t *testing.T) {
	c := make([]float64, 4)
	if err := F64MulAdd(c, 2, c, 2, c, 2, 2, 2, 2, false); err != nil {
		t.Fatalf("fitting buffers: %v", err)
	}
	for _, tc := range []struct{ ldc, lda, ldb, m, n, k int }{
		{2, 2, 2, 3, 2, 2},  // C too small
		{1, 2, 2, 2, 2, 2},  // ldc < n
		{2, 2, 2, -1, 2, 2}, // negative size
		{2, 1, 2, 2, 2, 2},  // lda < k
	} {
		if err := F64MulAdd(c, tc.ldc, c, tc.lda, c, tc.ldb, tc.m, tc.n, tc.k, false); err == nil {
			t.Errorf("%+v: no error", tc)
		}
	}
}

func BenchmarkF64MulAdd(b *testing.B) {
	const m, n, k = 128, 128, 1024
	r := rand.New(rand.NewPCG(1, 2))
	x, y, z := make([]float64, m*k), make([]float64, k*n), make([]float64, m*n)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	for i := range y {
		y[i] = r.NormFloat64()
	}
	for _, l := range levels() {
		b.Run(l.String(), func(b *testing.B) {
			withLevel(b, l, func() {
				for b.Loop() {
					_ = F64MulAdd(z, n, x, k, y, n, m, n, k, false)
				}
			})
			b.ReportMetric(float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

// F64SubScaled4 and F64SubScaled give, at every level, the bits of the Go
// expressions with every product and sum rounded on its own (explicit
// conversions forbid fusing), for every length around the vector width
// and adversarial values (zeros, ±65504, huge, tiny, signed zeros).
func TestF64SubScaledExact(t *testing.T) {
	fills := map[string]func(r *rand.Rand, i int) float64{
		"random": func(r *rand.Rand, _ int) float64 { return r.NormFloat64() },
		"extremes": func(_ *rand.Rand, i int) float64 {
			return []float64{65504, -65504, 0, math.Copysign(0, -1), 1e-310, 1e300}[i%6]
		},
		"cancel": func(r *rand.Rand, i int) float64 { return float64(1+i%3) * (1 + 1e-15*r.Float64()) },
	}
	for _, l := range levels() {
		for name, fill := range fills {
			for n := 0; n <= 19; n++ {
				r := rand.New(rand.NewPCG(uint64(n), 5))
				gen := func() []float64 {
					v := make([]float64, n+2)
					for i := range v {
						v[i] = fill(r, i)
					}
					return v
				}
				u0, u1, u2, u3, d := gen(), gen(), gen(), gen(), gen()
				e := [4]float64{fill(r, 1), -fill(r, 2), fill(r, 3) * 0.5, fill(r, 4)}
				want, want1 := append([]float64(nil), d...), append([]float64(nil), d...)
				for j := 0; j < n; j++ {
					s := float64(float64(float64(e[0]*u0[j])+float64(e[1]*u1[j]))+float64(e[2]*u2[j])) + float64(e[3]*u3[j])
					want[j] = want[j] - s
					want1[j] = want1[j] - float64(e[1]*u1[j])
				}
				got, got1 := append([]float64(nil), d...), append([]float64(nil), d...)
				withLevel(t, l, func() {
					F64SubScaled4(got[:n], u0, u1, u2, u3, &e)
					F64SubScaled(got1[:n], u1, e[1])
				})
				for j := range want {
					if math.Float64bits(got[j]) != math.Float64bits(want[j]) {
						t.Fatalf("%s %s n=%d: F64SubScaled4 [%d] = %g, want %g", l, name, n, j, got[j], want[j])
					}
					if math.Float64bits(got1[j]) != math.Float64bits(want1[j]) {
						t.Fatalf("%s %s n=%d: F64SubScaled [%d] = %g, want %g", l, name, n, j, got1[j], want1[j])
					}
				}
			}
		}
	}
}
