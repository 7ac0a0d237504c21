package gptqggml

import (
	"math"
	"testing"

	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/quant/gptq"
	"github.com/terse-llm/terse/tensor"
)

var latticeTypes = []tensor.DType{tensor.IQ1_S, tensor.IQ1_M, tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ2_S, tensor.IQ3_XXS, tensor.IQ3_S}

func isIQ1(dt tensor.DType) bool { return dt == tensor.IQ1_S || dt == tensor.IQ1_M }

// relaxedGrid is a reference for "GPTQ, then round to the lattice": GPTQ
// column by column onto the block's scalar magnitudes (±db·m for every
// magnitude m of the type's grid, ignoring which combinations the
// codebook holds; for the IQ1 types db·(t ± IQ1_DELTA), t = −1, 0, 1,
// either shift), whose output the test then quantizes with ggml.Quantize.
type relaxedGrid struct{ dt tensor.DType }

func (g relaxedGrid) GroupSize() int { return g.dt.BlockSize() }

func (g relaxedGrid) Fit(w, importance []float32) gptq.Params {
	blk := make([]byte, g.dt.BlockBytes())
	if err := ggml.Quantize(g.dt, w, blk, importance); err != nil {
		panic(err)
	}
	var lb ggml.LatticeBlock
	if err := lb.Reset(g.dt, blk); err != nil {
		panic(err)
	}
	if isIQ1(g.dt) {
		var vals []float32
		for _, t := range []float32{-1, 0, 1} {
			vals = append(vals, t+0.125, t-0.125)
		}
		return &relaxedParams{lb: lb, mags: vals, signed: true}
	}
	// The type's magnitudes: every value a run's first element can take.
	var mags []float32
	seen := map[float32]bool{}
	var c ggml.RunCode
	var v [8]float32
	for lb.Reset(g.dt, blk); c.Index[0] < 1024; c.Index[0]++ {
		c.Index[1] = c.Index[0]
		if !safeValues(&lb, c, v[:]) {
			break
		}
		for _, x := range v {
			if d := lb.Scale(0); d != 0 {
				x /= d
			}
			if x > 0 && !seen[x] {
				seen[x] = true
				mags = append(mags, x)
			}
		}
	}
	return &relaxedParams{lb: lb, mags: mags}
}

// safeValues is Values that reports false past the end of the grid.
func safeValues(lb *ggml.LatticeBlock, c ggml.RunCode, v []float32) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	lb.Values(0, c, v)
	return true
}

type relaxedParams struct {
	lb     ggml.LatticeBlock
	mags   []float32
	signed bool // mags are the signed values, not magnitudes
}

func (p *relaxedParams) Quantize(i int, x float32) float32 {
	db := p.lb.Scale(i / 8)
	best, bv := math.Inf(1), float32(0)
	for _, m := range p.mags {
		for _, s := range []float32{1, -1} {
			if p.signed && s < 0 {
				continue
			}
			v := s * db * m
			if d := math.Abs(float64(x - v)); d < best {
				best, bv = d, v
			}
		}
	}
	return bv
}

// TestLatticeBeatsRTNAndRounding: on a synthetic layer with correlated
// inputs, block LDLQ's proxy loss tr((W−Q)H(W−Q)ᵀ) is below llama.cpp's
// own importance-weighted quantizer's (RTN) and below column-wise GPTQ
// onto the scalar magnitudes followed by rounding to the lattice, for
// every lattice type; its bytes dequantize bit for bit to its values.
func TestLatticeBeatsRTNAndRounding(t *testing.T) {
	l := newLayer(7, 16, 512, 2000)
	stats := &quant.Stats{Hessian: l.h, Samples: l.samples}
	imp := diagImportance(l.h, l.cols, l.samples)
	for _, dt := range latticeTypes {
		data, res, err := func() ([]byte, *gptq.Result, error) {
			f, err := NewFactor(stats, l.cols, gptq.Config{})
			if err != nil {
				return nil, nil, err
			}
			return QuantizeFactor(dt, f, l.w, l.rows, gptq.Config{})
		}()
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		y := dequant(t, dt, data, l.rows*l.cols)
		for i, v := range res.Values {
			if math.Float32bits(v) != math.Float32bits(y[i]) {
				t.Fatalf("%s: element %d: GPTQ value %g, bytes dequantize to %g", dt, i, v, y[i])
			}
		}
		ldlq := outErr(l.w, y, l.rows, l.cols, l.h)
		rtn := outErr(l.w, rtnValues(t, dt, l.w, l.cols, imp), l.rows, l.cols, l.h)
		rel, err := gptq.Quantize(l.w, l.rows, l.cols, l.h, relaxedGrid{dt}, gptq.Config{})
		if err != nil {
			t.Fatal(err)
		}
		round := outErr(l.w, rtnValues(t, dt, rel.Values, l.cols, imp), l.rows, l.cols, l.h)
		t.Logf("%s: proxy loss LDLQ %.4g, RTN %.4g (%.3f×), GPTQ-then-round %.4g (%.3f×)", dt, ldlq, rtn, ldlq/rtn, round, ldlq/round)
		if !(ldlq < 0.9*rtn) || !(ldlq < round) {
			t.Errorf("%s: block LDLQ's proxy loss %.4g, want below RTN's %.4g ×0.9 and GPTQ-then-round's %.4g", dt, ldlq, rtn, round)
		}
	}
}

// TestLatticeLossIsExact: GPTQ's running loss estimate equals the proxy
// loss ½·tr((W−Q)(H+λI)(W−Q)ᵀ) of its result, λ the factor's damping:
// the run's errors went to the later columns exactly through the factor.
func TestLatticeLossIsExact(t *testing.T) {
	l := newLayer(8, 8, 512, 1500)
	stats := &quant.Stats{Hessian: l.h, Samples: l.samples}
	for _, dt := range latticeTypes {
		f, err := NewFactor(stats, l.cols, gptq.Config{})
		if err != nil {
			t.Fatal(err)
		}
		_, res, err := QuantizeFactor(dt, f, l.w, l.rows, gptq.Config{})
		if err != nil {
			t.Fatal(err)
		}
		hd := append([]float64(nil), l.h...)
		for j := 0; j < l.cols; j++ {
			hd[j*l.cols+j] += f.Damp
		}
		want := outErr(l.w, res.Values, l.rows, l.cols, hd) / 2
		if math.Abs(res.Loss-want) > 1e-6*want {
			t.Errorf("%s: GPTQ's loss %.9g, the result's proxy loss %.9g", dt, res.Loss, want)
		}
	}
}

// TestLatticeDiagonalHessian: with a diagonal Hessian no error is spread,
// so each sub-block takes the scale (ggml.Quantize's or a neighbour) and
// the points of least diag(H)-weighted error: never worse, group of 32 by
// group of 32, than llama.cpp's own codes in that error.
func TestLatticeDiagonalHessian(t *testing.T) {
	l := newLayer(9, 4, 512, 10)
	h := make([]float64, l.cols*l.cols)
	for j := 0; j < l.cols; j++ {
		h[j*l.cols+j] = l.h[j*l.cols+j]
	}
	stats := &quant.Stats{Hessian: h, Samples: l.samples}
	imp := Importance(stats, l.cols)
	for _, dt := range latticeTypes {
		data, err := QuantizeMatrix(dt, l.w, l.rows, l.cols, stats, gptq.Config{Damp: 1e-9})
		if err != nil {
			t.Fatal(err)
		}
		y := dequant(t, dt, data, len(l.w))
		ref := rtnValues(t, dt, l.w, l.cols, imp)
		for r := 0; r < len(l.w)/32; r++ {
			var eg, er float64
			for j := 32 * r; j < 32*r+32; j++ {
				c := j % l.cols
				dg, dr := float64(l.w[j]-y[j]), float64(l.w[j]-ref[j])
				eg += h[c*l.cols+c] * dg * dg
				er += h[c*l.cols+c] * dr * dr
			}
			if eg > er*(1+1e-6) {
				t.Fatalf("%s: group %d: weighted error %.6g, llama.cpp's codes %.6g", dt, r, eg, er)
			}
		}
	}
}

// TestLatticeDeadBlock: a block none of whose columns saw an input (zero
// importance, zero Hessian rows) is still written, for the types that
// need importance too.
func TestLatticeDeadBlock(t *testing.T) {
	l := newLayer(10, 4, 512, 600)
	for i := 0; i < 256; i++ {
		for j := 0; j < l.cols; j++ {
			l.h[i*l.cols+j], l.h[j*l.cols+i] = 0, 0
		}
	}
	stats := &quant.Stats{Hessian: l.h, Samples: l.samples}
	for _, dt := range latticeTypes {
		data, err := QuantizeMatrix(dt, l.w, l.rows, l.cols, stats, gptq.Config{})
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		y := dequant(t, dt, data, len(l.w))
		for r := 0; r < l.rows; r++ {
			for j := 0; j < 256; j++ {
				if y[r*l.cols+j] != 0 {
					t.Fatalf("%s: dead column %d is %g, want 0", dt, j, y[r*l.cols+j])
				}
			}
		}
	}
}
