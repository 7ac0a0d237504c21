package gptq

import (
	"math"
	"math/rand/v2"
	"testing"
)

// checkerGrid is a RunGrid for the tests: runs of rl columns take the
// points of {−2…2}^rl·step with an even coordinate sum (a scaled D_n
// lattice, not a product of scalar grids), found by exhaustive search in
// the run's metric.
type checkerGrid struct {
	rl   int
	step float64
}

func (g checkerGrid) GroupSize() int { return 0 }
func (g checkerGrid) RunLen() int    { return g.rl }
func (g checkerGrid) Fit(w, _ []float32) Params {
	return &checkerParams{g: g}
}

type checkerParams struct{ g checkerGrid }

func (p *checkerParams) Quantize(int, float32) float32 { panic("column-wise Quantize on a run grid") }

// points calls fn with every point of the grid.
func (g checkerGrid) points(fn func(q []float64)) {
	q := make([]float64, g.rl)
	var rec func(i, sum int)
	rec = func(i, sum int) {
		if i == g.rl {
			if sum%2 == 0 {
				fn(q)
			}
			return
		}
		for c := -2; c <= 2; c++ {
			q[i] = float64(c) * g.step
			rec(i+1, sum+c+2)
		}
	}
	rec(0, 0)
}

// nearest is the point q of least (x−q)ᵀm(x−q).
func (g checkerGrid) nearest(x []float64, m []float64) []float64 {
	best, bq := math.Inf(1), make([]float64, g.rl)
	e := make([]float64, g.rl)
	g.points(func(q []float64) {
		for i := range e {
			e[i] = x[i] - q[i]
		}
		var s float64
		for i := range e {
			for j := range e {
				s += e[i] * m[i*g.rl+j] * e[j]
			}
		}
		if s < best {
			best = s
			copy(bq, q)
		}
	})
	return bq
}

func (p *checkerParams) QuantizeRun(_ int, x []float32, m []float64, q []float32) {
	xs := make([]float64, len(x))
	for i, v := range x {
		xs[i] = float64(v)
	}
	for i, v := range p.g.nearest(xs, m) {
		q[i] = float32(v)
	}
}

// runSPD returns a random n×n symmetric positive-definite matrix with
// strongly correlated columns.
func runSPD(r *rand.Rand, n int) []float64 {
	a := make([]float64, n*n)
	for i := range a {
		a[i] = r.NormFloat64()
	}
	h := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			for k := 0; k < n; k++ {
				h[i*n+j] += a[k*n+i] * a[k*n+j]
			}
		}
		h[i*n+i] += 0.1
	}
	return h
}

// inv2 is the inverse of a 2×2 matrix.
func inv2(a [4]float64) [4]float64 {
	d := a[0]*a[3] - a[1]*a[2]
	return [4]float64{a[3] / d, -a[1] / d, -a[2] / d, a[0] / d}
}

// TestRunsTwoBlocksByHand: four columns in two runs of 2 against block
// LDLQ written out with plain 2×2 algebra on the damped Hessian H: the
// first run is placed in the metric of its Schur complement S = H₁₁ −
// H₁₂H₂₂⁻¹H₂₁, the second at the point nearest w₂ + (w₁−q₁)H₁₂H₂₂⁻¹ in the
// metric H₂₂.
func TestRunsTwoBlocksByHand(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	g := checkerGrid{rl: 2, step: 0.5}
	for trial := 0; trial < 50; trial++ {
		const n = 4
		h := runSPD(r, n)
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(1.5 * r.NormFloat64())
		}
		f, err := NewFactor(h, n, Config{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.Quantize(w, 1, g, Config{})
		if err != nil {
			t.Fatal(err)
		}
		hd := func(i, j int) float64 {
			v := h[i*n+j]
			if i == j {
				v += f.Damp
			}
			return v
		}
		h11 := [4]float64{hd(0, 0), hd(0, 1), hd(1, 0), hd(1, 1)}
		h12 := [4]float64{hd(0, 2), hd(0, 3), hd(1, 2), hd(1, 3)}
		h22 := [4]float64{hd(2, 2), hd(2, 3), hd(3, 2), hd(3, 3)}
		i22 := inv2(h22)
		// K = H₁₂·H₂₂⁻¹
		k := [4]float64{
			h12[0]*i22[0] + h12[1]*i22[2], h12[0]*i22[1] + h12[1]*i22[3],
			h12[2]*i22[0] + h12[3]*i22[2], h12[2]*i22[1] + h12[3]*i22[3],
		}
		// S = H₁₁ − K·H₂₁ (H₂₁ = H₁₂ᵀ)
		s := [4]float64{
			h11[0] - (k[0]*h12[0] + k[1]*h12[1]), h11[1] - (k[0]*h12[2] + k[1]*h12[3]),
			h11[2] - (k[2]*h12[0] + k[3]*h12[1]), h11[3] - (k[2]*h12[2] + k[3]*h12[3]),
		}
		q1 := g.nearest([]float64{float64(w[0]), float64(w[1])}, s[:])
		d0, d1 := float64(w[0])-q1[0], float64(w[1])-q1[1]
		x2 := []float64{float64(w[2]) + d0*k[0] + d1*k[2], float64(w[3]) + d0*k[1] + d1*k[3]}
		q2 := g.nearest(x2, h22[:])
		want := []float64{q1[0], q1[1], q2[0], q2[1]}
		for i, v := range res.Values {
			if float64(v) != want[i] {
				t.Fatalf("trial %d: values %v, by hand %v", trial, res.Values, want)
			}
		}
	}
}

// TestRunsOneBlockIsExhaustive: with one run spanning the row, block LDLQ
// is the exhaustive search for the point of least proxy loss
// (w−q)(H+λI)(w−q)ᵀ.
func TestRunsOneBlockIsExhaustive(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	const n = 4
	g := checkerGrid{rl: n, step: 0.7}
	for trial := 0; trial < 20; trial++ {
		h := runSPD(r, n)
		const rows = 3
		w := make([]float32, rows*n)
		for i := range w {
			w[i] = float32(1.5 * r.NormFloat64())
		}
		f, err := NewFactor(h, n, Config{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.Quantize(w, rows, g, Config{})
		if err != nil {
			t.Fatal(err)
		}
		hd := append([]float64(nil), h...)
		for j := 0; j < n; j++ {
			hd[j*n+j] += f.Damp
		}
		for row := 0; row < rows; row++ {
			x := make([]float64, n)
			for i := range x {
				x[i] = float64(w[row*n+i])
			}
			want := g.nearest(x, hd)
			for i := range want {
				if float64(res.Values[row*n+i]) != float64(float32(want[i])) {
					t.Fatalf("trial %d row %d: values %v, exhaustive %v", trial, row, res.Values[row*n:row*n+n], want)
				}
			}
		}
	}
}

// TestRunsRefuseActOrder: runs need the natural column order.
func TestRunsRefuseActOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	h := runSPD(r, 8)
	for i := 0; i < 8; i++ {
		h[i*8+i] += float64(i) // distinct diagonal: a real permutation
	}
	if _, err := Quantize(make([]float32, 8), 1, 8, h, checkerGrid{rl: 2, step: 1}, Config{ActOrder: true}); err == nil {
		t.Error("act-order accepted with runs")
	}
	if _, err := Quantize(make([]float32, 9), 1, 9, runSPD(r, 9), checkerGrid{rl: 2, step: 1}, Config{}); err == nil {
		t.Error("runs of 2 accepted over 9 columns")
	}
}
