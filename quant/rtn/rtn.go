// Package rtn is round-to-nearest quantization onto a uniform grid: the
// baseline every other method is measured against, and the grid GPTQ
// targets.
//
// A row of a weight matrix is cut into groups of GroupSize consecutive
// columns (the whole row when 0). Each group g gets a scale s and a zero
// point z, and each weight w an integer code u ∈ [0, 2^bits−1]; the weight
// is replaced by
//
//	ŵ = s · (u − z),   u = clamp(round(w/s + z), 0, 2^bits−1).
//
// Symmetric grids fix z = 2^(bits−1), so ŵ = s·q with q ∈ [−2^(bits−1),
// 2^(bits−1)−1], and take s = max|w| / (2^(bits−1)−1): the largest weight
// lands on the grid and no weight is further than s/2 from its point.
// Asymmetric grids span [min w, max w]: s = (max−min)/(2^bits−1), z =
// round(−min/s), an integer that may fall outside the code range (a row of
// all-positive weights has z < 0), so again |w − ŵ| ≤ s/2; this is the
// min/max quantizer of GPTQ's reference code without its forced inclusion
// of 0 in the range.
//
// With Search > 0 the group's parameters are instead chosen to minimise the
// importance-weighted error Σ_i imp_i (w_i − ŵ_i)², in the manner of
// llama.cpp's make_qx_quants and make_qkx2_quants (ggml-quants.c): for each
// of 2·Search+1 candidate scales around the min/max one the codes are
// rounded, then s (symmetric) or s and the offset (asymmetric) are refitted
// to those codes by weighted least squares, and the candidate with the
// smallest weighted error wins (the plain min/max fit is always among the
// candidates, so searching never does worse by that measure). Searched
// parameters may clip outliers, so the s/2 bound no longer holds, and an
// asymmetric zero point may be fractional. imp is llama.cpp's imatrix (mean
// squared activation per input column) when the caller has one.
package rtn

import (
	"fmt"
	"math"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Config chooses a grid.
type Config struct {
	Bits       int  // 2..8
	GroupSize  int  // columns sharing a scale; 0: the whole row
	Asymmetric bool // zero point fitted to the data (else centred)
	// Search > 0 tries 2·Search+1 candidate scales per group and keeps
	// the one with the least importance-weighted squared error.
	Search int
}

// Validate reports a setting out of range.
func (c Config) Validate() error {
	if c.Bits < 2 || c.Bits > 8 {
		return fmt.Errorf("rtn: %d bits, want 2 to 8", c.Bits)
	}
	if c.GroupSize < 0 {
		return fmt.Errorf("rtn: negative group size %d", c.GroupSize)
	}
	if c.Search < 0 || c.Search > 1000 {
		return fmt.Errorf("rtn: search of %d candidates, want 0 to 1000", c.Search)
	}
	return nil
}

// Name describes the grid, e.g. "rtn-q4-g128-asym-s10".
func (c Config) Name() string {
	s := fmt.Sprintf("rtn-q%d", c.Bits)
	if c.GroupSize > 0 {
		s += fmt.Sprintf("-g%d", c.GroupSize)
	}
	if c.Asymmetric {
		s += "-asym"
	} else {
		s += "-sym"
	}
	if c.Search > 0 {
		s += fmt.Sprintf("-s%d", c.Search)
	}
	return s
}

// Params are one group's grid: ŵ = Scale·(u − Zero) for codes u ∈ [0, Max].
type Params struct {
	Scale float32
	Zero  float32
	Max   uint8 // 2^bits − 1
}

// Code is the code of the grid point nearest to x.
func (p Params) Code(x float32) uint8 {
	if p.Scale == 0 {
		return uint8(min(max(math.Round(float64(p.Zero)), 0), float64(p.Max)))
	}
	u := math.Round(float64(x)/float64(p.Scale) + float64(p.Zero))
	return uint8(min(max(u, 0), float64(p.Max)))
}

// Value is the weight code u stands for.
func (p Params) Value(u uint8) float32 { return p.Scale * (float32(u) - p.Zero) }

// Quantize is the grid point nearest to x; i, the element's index within
// its group, does not matter for a uniform grid (it makes Params a
// gptq.Params).
func (p Params) Quantize(i int, x float32) float32 { return p.Value(p.Code(x)) }

// Fit chooses the parameters of one group w; importance (same length, or
// nil for uniform) weights the error when c.Search > 0.
func (c Config) Fit(w, importance []float32) Params {
	maxq := uint8(1<<c.Bits - 1)
	var lo, hi, amax, signed float32
	for i, x := range w {
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
		if a := float32(math.Abs(float64(x))); a > amax {
			amax, signed = a, x
		}
	}
	var p Params
	if c.Asymmetric {
		p = asymParams(lo, hi, maxq)
	} else {
		half := float32(int(1) << (c.Bits - 1))
		p = Params{Scale: amax / (half - 1), Zero: half, Max: maxq}
	}
	if c.Search == 0 || amax == 0 {
		return p
	}
	imp := importance
	if !positive(imp) {
		imp = nil
	}
	best := weightedError(p, w, imp)
	try := func(q Params) {
		if e := weightedError(q, w, imp); e < best {
			best, p = e, q
		}
	}
	for k := -c.Search; k <= c.Search; k++ {
		f := float64(k) / float64(c.Search) // −1 … 1
		if c.Asymmetric {
			// Codes from a range stretched or shrunk by up to ±20%, then
			// scale and offset refitted.
			iscale := (float64(maxq) + 0.2*f*float64(maxq)) / float64(hi-lo)
			if hi == lo {
				continue
			}
			try(refitAsym(w, imp, lo, iscale, maxq))
		} else {
			// llama.cpp's candidates: −(n + 0.1·k·…)/max with max the
			// signed extreme, so either sign of the grid gets the extra
			// negative level; then the scale refitted.
			half := float64(int(1) << (c.Bits - 1))
			iscale := -(half + f) / float64(signed)
			try(refitSym(w, imp, iscale, half, maxq))
		}
	}
	return p
}

func asymParams(lo, hi float32, maxq uint8) Params {
	switch {
	case hi == lo && lo == 0:
		return Params{Max: maxq}
	case hi == lo:
		// One value: make it code 0 exactly.
		return Params{Scale: lo, Zero: -1, Max: maxq}
	}
	s := (hi - lo) / float32(maxq)
	return Params{Scale: s, Zero: float32(math.Round(float64(-lo / s))), Max: maxq}
}

func positive(imp []float32) bool {
	for _, v := range imp {
		if v > 0 {
			return true
		}
	}
	return false
}

func weight(imp []float32, i int) float64 {
	if imp == nil {
		return 1
	}
	return float64(max(imp[i], 0))
}

func weightedError(p Params, w, imp []float32) float64 {
	var e float64
	for i, x := range w {
		d := float64(x - p.Quantize(i, x))
		e += weight(imp, i) * d * d
	}
	return e
}

// refitSym rounds w·iscale to codes q ∈ [−half, half−1] and returns the
// weighted least-squares scale for them, s = Σ imp·w·q / Σ imp·q².
func refitSym(w, imp []float32, iscale, half float64, maxq uint8) Params {
	var num, den float64
	for i, x := range w {
		q := min(max(math.Round(iscale*float64(x)), -half), half-1)
		wt := weight(imp, i)
		num += wt * float64(x) * q
		den += wt * q * q
	}
	if den == 0 {
		return Params{Zero: float32(half), Max: maxq}
	}
	return Params{Scale: float32(num / den), Zero: float32(half), Max: maxq}
}

// refitAsym rounds (w−lo)·iscale to codes u ∈ [0, maxq] and fits ŵ = s·u + m
// to them by weighted least squares; the zero point is −m/s.
func refitAsym(w, imp []float32, lo float32, iscale float64, maxq uint8) Params {
	var sw, sx, su, suu, sux float64
	for i, x := range w {
		u := min(max(math.Round(iscale*float64(x-lo)), 0), float64(maxq))
		wt := weight(imp, i)
		sw += wt
		sx += wt * float64(x)
		su += wt * u
		suu += wt * u * u
		sux += wt * u * float64(x)
	}
	d := sw*suu - su*su
	if d <= 0 {
		return asymParams(lo, lo, maxq)
	}
	s := (sw*sux - sx*su) / d
	m := (suu*sx - su*sux) / d
	if s == 0 {
		return Params{Max: maxq}
	}
	return Params{Scale: float32(s), Zero: float32(-m / s), Max: maxq}
}

// Result is a quantized matrix: codes and per-group parameters, so the
// caller can store them in any format, and the dequantized values.
type Result struct {
	Rows, Cols int
	GroupSize  int       // columns per group (Cols when the config said 0)
	Codes      []uint8   // Rows×Cols
	Params     []Params  // Rows×Groups(), row-major
	Values     []float32 // Rows×Cols: Params[group].Value(code)
}

// Groups is the number of groups per row (the last may be short).
func (r *Result) Groups() int { return (r.Cols + r.GroupSize - 1) / r.GroupSize }

// Quantize rounds the rows×cols matrix w (row-major) onto the grid cfg
// describes. importance, one value per column or nil, weights the error
// of the scale search. Rows are spread across cores.
func Quantize(w []float32, rows, cols int, importance []float32, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rows < 0 || cols <= 0 || len(w) != rows*cols {
		return nil, fmt.Errorf("rtn: %d values for a %d×%d matrix", len(w), rows, cols)
	}
	if importance != nil && len(importance) != cols {
		return nil, fmt.Errorf("rtn: %d importance values for %d columns", len(importance), cols)
	}
	gs := cfg.GroupSize
	if gs == 0 || gs > cols {
		gs = cols
	}
	r := &Result{Rows: rows, Cols: cols, GroupSize: gs,
		Codes: make([]uint8, rows*cols), Values: make([]float32, rows*cols)}
	ng := r.Groups()
	r.Params = make([]Params, rows*ng)
	kernel.Parallel(rows, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for g := 0; g < ng; g++ {
				c0, c1 := g*gs, min((g+1)*gs, cols)
				var imp []float32
				if importance != nil {
					imp = importance[c0:c1]
				}
				p := cfg.Fit(w[i*cols+c0:i*cols+c1], imp)
				r.Params[i*ng+g] = p
				for j := c0; j < c1; j++ {
					u := p.Code(w[i*cols+j])
					r.Codes[i*cols+j] = u
					r.Values[i*cols+j] = p.Value(u)
				}
			}
		}
	})
	return r, nil
}

// Quantizer is RTN as a quant.Quantizer: it returns an F32 tensor of the
// dequantized weights and uses stats.Importance, when given, in the scale
// search.
type Quantizer struct{ Config Config }

var _ quant.Quantizer = Quantizer{}

// Name describes the grid.
func (q Quantizer) Name() string { return q.Config.Name() }

// Quantize rounds every row of w.
func (q Quantizer) Quantize(w *tensor.Tensor, stats *quant.Stats) (*tensor.Tensor, error) {
	r, err := QuantizeTensor(w, stats, q.Config)
	if err != nil {
		return nil, err
	}
	return tensor.FromFloat32(w.Name, w.Shape, r.Values), nil
}

// QuantizeTensor is Quantize on a weight tensor of any readable type.
func QuantizeTensor(w *tensor.Tensor, stats *quant.Stats, cfg Config) (*Result, error) {
	if len(w.Shape) != 2 {
		return nil, fmt.Errorf("rtn: %s: shape %v is not a matrix", w.Name, w.Shape)
	}
	if err := stats.Check(w.Cols()); err != nil {
		return nil, fmt.Errorf("rtn: %s: %w", w.Name, err)
	}
	v, err := ggml.DequantizeTensor(w)
	if err != nil {
		return nil, fmt.Errorf("rtn: %s: %w", w.Name, err)
	}
	var imp []float32
	if stats != nil {
		imp = stats.Importance
	}
	r, err := Quantize(v, w.Rows(), w.Cols(), imp, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.Name, err)
	}
	return r, nil
}
