package gptq

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/rtn"
	"github.com/terse-llm/terse/tensor"
)

// problem is a weight matrix with correlated calibration inputs X = Z·A
// (samples×cols), so H = XᵀX is far from diagonal and ill-conditioned.
type problem struct {
	rows, cols, samples int
	w                   []float32
	x                   []float64 // samples×cols
	h                   []float64
}

func newProblem(seed uint64, rows, cols, samples int) *problem {
	rng := rand.New(rand.NewPCG(seed, 11))
	p := &problem{rows: rows, cols: cols, samples: samples}
	p.w = make([]float32, rows*cols)
	for i := range p.w {
		p.w[i] = float32(rng.NormFloat64())
	}
	k := cols / 4 // rank of the dominant part
	a := make([]float64, k*cols)
	for i := range a {
		a[i] = rng.NormFloat64()
	}
	p.x = make([]float64, samples*cols)
	for s := 0; s < samples; s++ {
		z := make([]float64, k)
		for i := range z {
			z[i] = rng.NormFloat64()
		}
		for j := 0; j < cols; j++ {
			var v float64
			for i := range z {
				v += z[i] * a[i*cols+j]
			}
			// A little isotropic noise keeps H invertible; column scales
			// vary over two orders of magnitude, like real activations.
			p.x[s*cols+j] = (v + 0.05*rng.NormFloat64()) * math.Exp(float64(j%7)/3)
		}
	}
	p.h = make([]float64, cols*cols)
	for s := 0; s < samples; s++ {
		xs := p.x[s*cols : (s+1)*cols]
		for i, a := range xs {
			for j, b := range xs {
				p.h[i*cols+j] += a * b
			}
		}
	}
	return p
}

// outErr is ‖(W−Ŵ)Xᵀ‖² computed directly from X.
func (p *problem) outErr(q []float32) float64 {
	var e float64
	d := make([]float64, p.cols)
	for r := 0; r < p.rows; r++ {
		for j := range d {
			d[j] = float64(p.w[r*p.cols+j] - q[r*p.cols+j])
		}
		for s := 0; s < p.samples; s++ {
			var v float64
			for j, dj := range d {
				v += dj * p.x[s*p.cols+j]
			}
			e += v * v
		}
	}
	return e
}

func checkOnGrid(t *testing.T, r *Result) {
	t.Helper()
	ng := r.Groups()
	for i := 0; i < r.Rows; i++ {
		for j := 0; j < r.Cols; j++ {
			g := j / r.GroupSize
			v := r.Values[i*r.Cols+j]
			if q := r.Params[i*ng+g].Quantize(j-g*r.GroupSize, v); q != v {
				t.Fatalf("value (%d,%d) = %g is not on its group's grid (nearest %g)", i, j, v, q)
			}
		}
	}
}

func TestGPTQBeatsRTN(t *testing.T) {
	p := newProblem(1, 64, 128, 512)
	cases := []struct {
		grid rtn.Config
		cfg  Config
	}{
		{rtn.Config{Bits: 4}, Config{}},
		{rtn.Config{Bits: 3, GroupSize: 32}, Config{}},
		{rtn.Config{Bits: 3, GroupSize: 32, Asymmetric: true}, Config{}},
		{rtn.Config{Bits: 3, GroupSize: 32}, Config{ActOrder: true}},
		{rtn.Config{Bits: 3, GroupSize: 32}, Config{ActOrder: true, StaticGroups: true}},
		{rtn.Config{Bits: 2, GroupSize: 16, Asymmetric: true}, Config{ActOrder: true, BlockSize: 32}},
		{rtn.Config{Bits: 4, GroupSize: 24}, Config{BlockSize: 40}},
	}
	for _, c := range cases {
		base, err := rtn.Quantize(p.w, p.rows, p.cols, nil, c.grid)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Quantize(p.w, p.rows, p.cols, p.h, RTN(c.grid), c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkOnGrid(t, r)
		eR, eG := p.outErr(base.Values), p.outErr(r.Values)
		ratio := eG / eR
		t.Logf("%s act-order %v static %v block %d: ‖(W−Ŵ)Xᵀ‖² GPTQ/RTN = %.3f (loss %.4g)",
			c.grid.Name(), c.cfg.ActOrder, c.cfg.StaticGroups, c.cfg.BlockSize, ratio, r.Loss)
		if !(ratio < 0.8) {
			t.Errorf("%s %+v: GPTQ/RTN error ratio %.3f, want < 0.8", c.grid.Name(), c.cfg, ratio)
		}
	}
}

// naiveOBQ is GPTQ without Cholesky or blocks: the explicit inverse
// Hessian of the remaining columns, downdated after each column (Optimal
// Brain Quantization's formulas), in the identity order, one group per row.
func naiveOBQ(p *problem, grid rtn.Config, damp float64) []float32 {
	n := p.cols
	h := append([]float64(nil), p.h...)
	var mean float64
	for j := 0; j < n; j++ {
		mean += h[j*n+j]
	}
	for j := 0; j < n; j++ {
		h[j*n+j] += damp * mean / float64(n)
	}
	hinv := invert(h, n)
	out := make([]float32, p.rows*n)
	for r := 0; r < p.rows; r++ {
		w := make([]float64, n)
		for j := range w {
			w[j] = float64(p.w[r*n+j])
		}
		par := grid.Fit(p.w[r*n:(r+1)*n], nil)
		hi := append([]float64(nil), hinv...)
		for c := 0; c < n; c++ {
			q := par.Quantize(c, float32(w[c]))
			out[r*n+c] = q
			d := hi[c*n+c]
			e := (w[c] - float64(q)) / d
			for j := c + 1; j < n; j++ {
				w[j] -= e * hi[c*n+j]
			}
			for i := c + 1; i < n; i++ {
				f := hi[i*n+c] / d
				for j := c + 1; j < n; j++ {
					hi[i*n+j] -= f * hi[c*n+j]
				}
			}
		}
	}
	return out
}

func invert(a []float64, n int) []float64 {
	m := append([]float64(nil), a...)
	inv := make([]float64, n*n)
	for i := 0; i < n; i++ {
		inv[i*n+i] = 1
	}
	for c := 0; c < n; c++ {
		piv := c
		for i := c + 1; i < n; i++ {
			if math.Abs(m[i*n+c]) > math.Abs(m[piv*n+c]) {
				piv = i
			}
		}
		for j := 0; j < n; j++ {
			m[c*n+j], m[piv*n+j] = m[piv*n+j], m[c*n+j]
			inv[c*n+j], inv[piv*n+j] = inv[piv*n+j], inv[c*n+j]
		}
		d := m[c*n+c]
		for j := 0; j < n; j++ {
			m[c*n+j] /= d
			inv[c*n+j] /= d
		}
		for i := 0; i < n; i++ {
			if i != c && m[i*n+c] != 0 {
				f := m[i*n+c]
				for j := 0; j < n; j++ {
					m[i*n+j] -= f * m[c*n+j]
					inv[i*n+j] -= f * inv[c*n+j]
				}
			}
		}
	}
	return inv
}

func TestMatchesNaiveOBQ(t *testing.T) {
	p := newProblem(2, 24, 96, 300)
	grid := rtn.Config{Bits: 3}
	want := naiveOBQ(p, grid, 0.01)
	for _, bs := range []int{1, 7, 32, 128} {
		r, err := Quantize(p.w, p.rows, p.cols, p.h, RTN(grid), Config{BlockSize: bs})
		if err != nil {
			t.Fatal(err)
		}
		diff := 0
		for i := range want {
			if r.Values[i] != want[i] {
				diff++
			}
		}
		// Rounding ties may fall differently after different arithmetic.
		if diff > len(want)/200 {
			t.Errorf("block %d: %d of %d values differ from the naive OBQ", bs, diff, len(want))
		}
	}
}

func TestFactorInvertsHessian(t *testing.T) {
	p := newProblem(3, 1, 70, 200)
	p.h[5*70+5] = 0 // a dead column (its row and column are zero in practice)
	for j := 0; j < 70; j++ {
		p.h[5*70+j], p.h[j*70+5] = 0, 0
	}
	for _, act := range []bool{false, true} {
		f, err := NewFactor(p.h, 70, Config{ActOrder: act})
		if err != nil {
			t.Fatal(err)
		}
		if !f.Dead[5] {
			t.Fatal("dead column not found")
		}
		n := 70
		// Permuted, damped H with the dead diagonal set to 1.
		hp := make([]float64, n*n)
		for a := 0; a < n; a++ {
			for b := 0; b < n; b++ {
				v := p.h[f.Perm[a]*n+f.Perm[b]]
				if a == b {
					if f.Dead[f.Perm[a]] {
						v = 1
					}
					v += f.Damp
				}
				hp[a*n+b] = v
			}
		}
		// (UᵀU)·Hp = I.
		var worst float64
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				var s float64
				for k := 0; k < n; k++ {
					var uu float64 // (UᵀU)[i][k]
					for m := 0; m <= min(i, k); m++ {
						uu += f.u[m*n+i] * f.u[m*n+k]
					}
					s += uu * hp[k*n+j]
				}
				if i == j {
					s--
				}
				worst = max(worst, math.Abs(s))
			}
		}
		if worst > 1e-8 {
			t.Errorf("act-order %v: |UᵀU·H − I| = %g", act, worst)
		}
		if act {
			for i := 1; i < n; i++ {
				da, db := p.h[f.Perm[i-1]*71], p.h[f.Perm[i]*71]
				if f.Dead[f.Perm[i-1]] {
					da = 1
				}
				if f.Dead[f.Perm[i]] {
					db = 1
				}
				if da < db {
					t.Fatalf("act-order: diag %g before %g", da, db)
				}
			}
		}
	}
}

func TestDeadColumnsAndDegenerateH(t *testing.T) {
	p := newProblem(4, 16, 64, 200)
	for _, j := range []int{0, 9, 63} {
		for k := 0; k < 64; k++ {
			p.h[j*64+k], p.h[k*64+j] = 0, 0
		}
	}
	grid := rtn.Config{Bits: 4, GroupSize: 16}
	for _, act := range []bool{false, true} {
		r, err := Quantize(p.w, 16, 64, p.h, RTN(grid), Config{ActOrder: act})
		if err != nil {
			t.Fatal(err)
		}
		checkOnGrid(t, r)
		for i := 0; i < 16; i++ {
			for _, j := range []int{0, 9, 63} {
				g := j / 16
				if want := r.Params[i*4+g].Quantize(j%16, 0); r.Values[i*64+j] != want {
					t.Fatalf("dead column %d row %d: %g, want the grid point nearest 0 (%g)", j, i, r.Values[i*64+j], want)
				}
			}
		}
	}
	// A rank-deficient H (fewer samples than columns) is rescued by damping.
	q := newProblem(5, 8, 64, 10)
	if _, err := Quantize(q.w, 8, 64, q.h, RTN(grid), Config{}); err != nil {
		t.Fatal(err)
	}
	// All-zero H: every column dead.
	if _, err := Quantize(q.w, 8, 64, make([]float64, 64*64), RTN(grid), Config{}); err != nil {
		t.Fatal(err)
	}
	bad := append([]float64(nil), q.h...)
	bad[3*64+3] = math.NaN()
	if _, err := Quantize(q.w, 8, 64, bad, RTN(grid), Config{}); err == nil {
		t.Error("NaN Hessian accepted")
	}
	if _, err := Quantize(q.w[:10], 8, 64, q.h, RTN(grid), Config{}); err == nil {
		t.Error("wrong size accepted")
	}
}

func TestQuantizer(t *testing.T) {
	p := newProblem(6, 8, 32, 100)
	w := tensor.FromFloat32("blk.0.ffn_up.weight", []int{8, 32}, p.w)
	var q quant.Quantizer = Quantizer{Grid: RTN(rtn.Config{Bits: 4, GroupSize: 16}), Config: Config{ActOrder: true}}
	if q.Name() != "gptq-rtn-q4-g16-sym-act" {
		t.Errorf("name %q", q.Name())
	}
	if _, err := q.Quantize(w, nil); err == nil {
		t.Error("no error without a Hessian")
	}
	out, err := q.Quantize(w, &quant.Stats{Hessian: p.h, Samples: 100})
	if err != nil {
		t.Fatal(err)
	}
	if out.DType != tensor.F32 || out.Name != w.Name || out.NumElements() != 8*32 {
		t.Fatalf("out %s %v %s", out.DType, out.Shape, out.Name)
	}
}

func benchmark(b *testing.B, rows, cols int) {
	rng := rand.New(rand.NewPCG(7, 7))
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	// H = XᵀX for 2·cols random correlated samples.
	x := make([]float64, 2*cols*cols)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	h := make([]float64, cols*cols)
	for s := 0; s < 2*cols; s++ {
		xs := x[s*cols : (s+1)*cols]
		for i, a := range xs {
			for j, c := range xs {
				h[i*cols+j] += a * c
			}
		}
	}
	grid := RTN(rtn.Config{Bits: 4, GroupSize: 128})
	b.ResetTimer()
	var tf, tq time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		f, err := NewFactor(h, cols, Config{ActOrder: true})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := f.Quantize(w, rows, grid, Config{ActOrder: true}); err != nil {
			b.Fatal(err)
		}
		tf += t1.Sub(t0)
		tq += time.Since(t1)
	}
	b.ReportMetric(tf.Seconds()/float64(b.N)*1e3, "factor-ms/op")
	b.ReportMetric(tq.Seconds()/float64(b.N)*1e3, "quant-ms/op")
}

func BenchmarkGPTQ1536x512(b *testing.B) { benchmark(b, 1536, 512) }
func BenchmarkGPTQ512x1536(b *testing.B) { benchmark(b, 512, 1536) }
