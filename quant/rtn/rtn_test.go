package rtn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/tensor"
)

func randMatrix(rng *rand.Rand, rows, cols int, offset float64) []float32 {
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(offset + rng.NormFloat64())
	}
	return w
}

// onGrid reports whether every value of r is its group's grid point for its code.
func checkConsistent(t *testing.T, r *Result) {
	t.Helper()
	ng := r.Groups()
	for i := 0; i < r.Rows; i++ {
		for j := 0; j < r.Cols; j++ {
			p := r.Params[i*ng+j/r.GroupSize]
			u := r.Codes[i*r.Cols+j]
			if u > p.Max {
				t.Fatalf("code %d above %d", u, p.Max)
			}
			if v := r.Values[i*r.Cols+j]; v != p.Value(u) || p.Quantize(j, v) != v {
				t.Fatalf("(%d,%d): value %g, code %d → %g, requantized %g", i, j, v, u, p.Value(u), p.Quantize(j, v))
			}
		}
	}
}

func TestErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, cfg := range []Config{
		{Bits: 2}, {Bits: 3, GroupSize: 16}, {Bits: 4}, {Bits: 4, GroupSize: 32},
		{Bits: 4, GroupSize: 24, Asymmetric: true}, {Bits: 5, Asymmetric: true},
		{Bits: 8, GroupSize: 64}, {Bits: 8, Asymmetric: true},
	} {
		for _, offset := range []float64{0, 3} { // 3: nearly all-positive rows
			w := randMatrix(rng, 8, 100, offset)
			r, err := Quantize(w, 8, 100, nil, cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkConsistent(t, r)
			ng := r.Groups()
			var worst float64
			for i := range w {
				p := r.Params[(i/100)*ng+(i%100)/r.GroupSize]
				e := math.Abs(float64(w[i] - r.Values[i]))
				if e > float64(p.Scale)/2*(1+1e-5)+1e-7 {
					t.Fatalf("%s offset %g: |w−ŵ| = %g > scale/2 = %g at %d", cfg.Name(), offset, e, p.Scale/2, i)
				}
				worst = max(worst, e)
			}
			if cfg.Bits == 8 && worst > 0.02*(1+offset) {
				t.Errorf("%s: 8-bit error %g", cfg.Name(), worst)
			}
		}
	}
}

func TestExactGridIsKept(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		row  []float32
	}{
		// Symmetric: s·q with max|w| = 7s (4 bits).
		{"sym4", Config{Bits: 4}, []float32{-0.875, -0.5, 0, 0.125, 0.25, 0.875, -0.75}},
		{"sym2", Config{Bits: 2}, []float32{-1, 0, 1, 1, 0, -1}},
		// Asymmetric, all positive: lo + s·u with s = (hi−lo)/15.
		{"asym4", Config{Bits: 4, Asymmetric: true}, []float32{5, 5.25, 6.5, 8.75, 8.5, 6}},
		{"asym3-groups", Config{Bits: 3, GroupSize: 4, Asymmetric: true}, []float32{1, 2, 8, 3, -7, -6, 0, -5}},
		{"constant", Config{Bits: 4, Asymmetric: true}, []float32{2.5, 2.5, 2.5}},
		{"zeros", Config{Bits: 3}, []float32{0, 0, 0, 0}},
	}
	for _, c := range cases {
		for _, search := range []int{0, 5} {
			cfg := c.cfg
			cfg.Search = search
			r, err := Quantize(c.row, 1, len(c.row), nil, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for j, v := range r.Values {
				if v != c.row[j] {
					t.Errorf("%s search %d: w[%d] = %g came back %g", c.name, search, j, c.row[j], v)
				}
			}
			checkConsistent(t, r)
		}
	}
}

func TestAsymmetricBeatsSymmetricOnPositiveRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	w := make([]float32, 16*64)
	for i := range w {
		w[i] = float32(1 + rng.Float64()) // all in [1, 2)
	}
	mse := func(cfg Config) float64 {
		r, err := Quantize(w, 16, 64, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for i := range w {
			d := float64(w[i] - r.Values[i])
			s += d * d
		}
		return s / float64(len(w))
	}
	sym, asym := mse(Config{Bits: 4}), mse(Config{Bits: 4, Asymmetric: true})
	if !(asym < sym/3) {
		t.Errorf("all-positive rows: asymmetric MSE %g, symmetric %g", asym, sym)
	}
}

func TestSearchLowersWeightedError(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const rows, cols = 32, 256
	w := randMatrix(rng, rows, cols, 0)
	for i := 0; i < rows; i++ { // a few outliers
		w[i*cols+rng.IntN(cols)] *= 6
	}
	imp := make([]float32, cols)
	for j := range imp {
		imp[j] = float32(math.Exp(2 * rng.NormFloat64()))
	}
	werr := func(r *Result) float64 {
		var s float64
		for i := range w {
			d := float64(w[i] - r.Values[i])
			s += float64(imp[i%cols]) * d * d
		}
		return s
	}
	for _, base := range []Config{{Bits: 3, GroupSize: 32}, {Bits: 4}, {Bits: 4, GroupSize: 64, Asymmetric: true}, {Bits: 2, GroupSize: 32, Asymmetric: true}} {
		plain, _ := Quantize(w, rows, cols, imp, base)
		s := base
		s.Search = 10
		searched, err := Quantize(w, rows, cols, imp, s)
		if err != nil {
			t.Fatal(err)
		}
		checkConsistent(t, searched)
		ep, es := werr(plain), werr(searched)
		t.Logf("%s: weighted error %.4g → %.4g with search (%.2f)", base.Name(), ep, es, es/ep)
		if !(es <= ep) || !(es < 0.95*ep) {
			t.Errorf("%s: search error %g vs plain %g", base.Name(), es, ep)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Bits: 1}, {Bits: 9}, {Bits: 4, GroupSize: -1}, {Bits: 4, Search: -1}} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := Quantize(make([]float32, 6), 2, 4, nil, Config{Bits: 4}); err == nil {
		t.Error("wrong size accepted")
	}
	if got := (Config{Bits: 4, GroupSize: 128, Asymmetric: true, Search: 10}).Name(); got != "rtn-q4-g128-asym-s10" {
		t.Errorf("name %q", got)
	}
}

func TestQuantizer(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	w := randMatrix(rng, 4, 64, 0)
	in := tensor.FromFloat32("blk.0.attn_q.weight", []int{4, 64}, w)
	var q quant.Quantizer = Quantizer{Config{Bits: 4, GroupSize: 32}}
	out, err := q.Quantize(in, &quant.Stats{Importance: make([]float32, 64)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != in.Name || out.DType != tensor.F32 || out.Shape[0] != 4 || out.Shape[1] != 64 {
		t.Fatalf("out %s %s %v", out.Name, out.DType, out.Shape)
	}
	if _, err := q.Quantize(in, &quant.Stats{Importance: make([]float32, 3)}); err == nil {
		t.Error("mismatched importance accepted")
	}
}
