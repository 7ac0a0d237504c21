// Package gptq implements GPTQ (Frantar, Ashkboos, Hoefler, Alistarh,
// "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
// Transformers", ICLR 2023, arXiv:2210.17323), written from the paper and
// its reference implementation (github.com/IST-DASLab/gptq, gptq.py).
//
// GPTQ minimises the layer's output error ‖(W−Ŵ)Xᵀ‖² = Σ_rows δ H δᵀ, with
// H = XᵀX the Hessian of the calibration inputs X, one row at a time and
// one column at a time (Optimal Brain Quantization with a fixed order):
// when column p of a row is rounded to q, the error e = (w_p − q)/U_pp is
// spread over the columns not yet quantized, w_{p+1:} −= e·U_{p,p+1:},
// where U is the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU), whose row p is
// the inverse Hessian of the remaining columns, rescaled. Practicalities,
// as in the reference:
//
//   - damping: H + λI with λ = Damp·mean(diag H) (default 0.01);
//   - dead columns (H_jj = 0, inputs always zero): H_jj = 1 and W_:j = 0;
//   - act-order: columns are quantized in order of decreasing H_jj and
//     put back in place at the end;
//   - lazy batch updates: columns go in blocks of BlockSize (128); within a
//     block updates touch only the block, and the rest of the row gets the
//     block's accumulated update at once (a rank-BlockSize product).
//
// The grid (what "rounding" means) is abstracted by Grid, so the same
// algorithm targets uniform RTN grids (RTN) and, later, ggml's block
// formats. Groups of GroupSize consecutive columns of a row share grid
// parameters. A group's parameters are fitted when its first column is
// about to be quantized, from the current, already error-compensated
// values of all its columns; the reference does the same without
// act-order (it reads the group's values at block start, which is the same
// when groups and blocks align). With act-order the groups here stay
// contiguous in the original column order, so the result stays storable in
// block formats (the reference instead groups consecutive permuted
// columns); StaticGroups fits every group from the original weights up
// front, as the reference's static_groups option.
//
// Lattice codebooks, whose points are runs of several columns (RunGrid),
// are placed a run at a time: block LDLQ. Each run is placed at its grid
// point nearest its current values in the metric of the run's diagonal
// block of U (the Hessian of the run given that the later columns
// compensate), and each column of the run then spreads its error as
// above, which carries the run's error e to the later columns as
// e·U_rr⁻¹·U_r,later.
//
// Rows are independent given U, so rows are quantized in parallel, sixteen
// at a time per goroutine to share the loads of U.
package gptq

import (
	"fmt"
	"math"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/quant/rtn"
	"github.com/terse-llm/terse/tensor"
)

// Grid fixes quantization parameters for groups of consecutive columns of
// one row.
type Grid interface {
	// GroupSize is the number of consecutive columns sharing parameters
	// (0: the whole row). The last group of a row may be shorter.
	GroupSize() int
	// Fit chooses a group's parameters. w holds the group's current values
	// in one row; importance (same length) weighs its columns: diag(H) by
	// default (see Factor.Importance). Fit must not keep either slice.
	Fit(w []float32, importance []float32) Params
}

// Params is one group's fitted grid.
type Params interface {
	// Quantize returns the grid point for element i of the group (its
	// index within the group) nearest to x.
	Quantize(i int, x float32) float32
}

// RunGrid is a Grid whose points are runs of RunLen consecutive columns
// of a group rather than single values: a lattice codebook, as the i-quants
// code groups of 8 weights. GPTQ onto it is block LDLQ (QuIP#, Tseng et
// al., arXiv:2402.04396): each run is placed at once, on values that hold
// the error feedback of every earlier column, and its error goes to the
// later columns through the run's block of the factor.
//
// A RunGrid with RunLen() ≤ 1 is an ordinary Grid.
type RunGrid interface {
	Grid
	// RunLen is the number of columns of one run; it divides GroupSize.
	RunLen() int
}

// RunParams is the Params of a RunGrid's group.
type RunParams interface {
	Params
	// QuantizeRun places run r of the group (its elements r·RunLen …
	// r·RunLen+RunLen−1) at the grid point nearest x, the run's current
	// values, in the metric m (RunLen×RunLen, row-major: the increase of
	// GPTQ's proxy loss for a run error e, with the later columns free to
	// compensate, is eᵀ·m·e), remembers its code and writes its values
	// into q.
	QuantizeRun(r int, x []float32, m []float64, q []float32)
}

// RTN is the uniform round-to-nearest grid of package rtn; its Params are
// rtn.Params, which also give the integer codes.
func RTN(cfg rtn.Config) Grid { return rtnGrid{cfg} }

type rtnGrid struct{ cfg rtn.Config }

func (g rtnGrid) GroupSize() int                     { return g.cfg.GroupSize }
func (g rtnGrid) Fit(w, importance []float32) Params { return g.cfg.Fit(w, importance) }
func (g rtnGrid) Name() string                       { return g.cfg.Name() }

// Config holds GPTQ's settings; the zero value is the paper's defaults.
type Config struct {
	Damp         float64 // relative diagonal damping; 0: 0.01
	BlockSize    int     // lazy-batch block; 0: 128
	ActOrder     bool    // quantize columns by decreasing H_jj
	StaticGroups bool    // fit all groups from the original weights first
}

func (c Config) withDefaults() Config {
	if c.Damp == 0 {
		c.Damp = 0.01
	}
	if c.BlockSize <= 0 {
		c.BlockSize = 128
	}
	return c
}

// Result is a quantized matrix.
type Result struct {
	Rows, Cols int
	GroupSize  int       // columns per group (Cols for whole rows)
	Values     []float32 // Rows×Cols, original column order; on the grid
	Params     []Params  // Rows×Groups(): each group's fitted grid
	// Loss is GPTQ's estimate of the increase in ½‖(W−Ŵ)Xᵀ‖² at the scale
	// of H: Σ (w−q)²/(2·U_pp²) over all elements (the reference's Losses).
	Loss float64
}

// Groups is the number of groups per row.
func (r *Result) Groups() int { return (r.Cols + r.GroupSize - 1) / r.GroupSize }

// Quantize runs GPTQ on the rows×cols matrix w (row-major, not modified)
// with Hessian h (cols×cols) onto grid.
func Quantize(w []float32, rows, cols int, h []float64, grid Grid, cfg Config) (*Result, error) {
	f, err := NewFactor(h, cols, cfg)
	if err != nil {
		return nil, err
	}
	return f.Quantize(w, rows, grid, cfg)
}

// Quantize runs GPTQ on the rows×f.Cols matrix w (row-major, not modified)
// onto grid. cfg must match the Config f was made with in ActOrder and
// Damp (they are baked into f); BlockSize and StaticGroups are read here.
func (f *Factor) Quantize(w []float32, rows int, grid Grid, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	n := f.Cols
	if rows < 0 || len(w) != rows*n {
		return nil, fmt.Errorf("gptq: %d values for a %d×%d matrix", len(w), rows, n)
	}
	gs := grid.GroupSize()
	if gs <= 0 || gs > n {
		gs = n
	}
	rl := 1
	if rg, ok := grid.(RunGrid); ok && rg.RunLen() > 1 {
		rl = rg.RunLen()
		switch {
		case f.permuted():
			return nil, fmt.Errorf("gptq: runs of %d columns need the natural column order; act-order is not supported", rl)
		case n%rl != 0 || gs%rl != 0:
			return nil, fmt.Errorf("gptq: runs of %d columns do not tile %d columns in groups of %d", rl, n, gs)
		}
		cfg.BlockSize = (cfg.BlockSize + rl - 1) / rl * rl
	}
	r := &Result{Rows: rows, Cols: n, GroupSize: gs, Values: make([]float32, rows*n)}
	ng := r.Groups()
	var metrics []float64
	if rl > 1 {
		metrics = f.runMetrics(rl)
	}
	r.Params = make([]Params, rows*ng)
	// Rows go sixteen to a tile: each block of U is then read once per
	// sixteen rows rather than four (every row's arithmetic is the same).
	const tile = 16
	tiles := (rows + tile - 1) / tile
	losses := make([]float64, tiles)
	parallelDynamicRange(tiles, func(lo, hi int) {
		s := newScratch(n, cfg.BlockSize, gs, tile, rl)
		s.metrics = metrics
		for t := lo; t < hi; t++ {
			r0, r1 := t*tile, min(t*tile+tile, rows)
			losses[t] = f.quantizeRows(s, w, r, r0, r1, grid, cfg)
		}
	})
	for _, l := range losses {
		r.Loss += l
	}
	return r, nil
}

// scratch is one goroutine's working memory.
type scratch struct {
	w      [][]float64 // per tile row: current values, permuted order
	err    [][]float64 // per tile row: the block's scaled errors
	fitted [][]bool    // per tile row: which groups have parameters
	gw     []float32   // a group's values for Grid.Fit

	// Runs (RunGrid with RunLen > 1): the run length, each run's metric
	// (Factor.runMetrics), a run's current values and, per tile row, the
	// values its current run was placed at.
	rl      int
	gs, b1  int // the group size and the current lazy block's end
	metrics []float64
	rx      []float32
	rq      [][]float32
}

func newScratch(n, block, gs, tile, rl int) *scratch {
	s := &scratch{gw: make([]float32, gs), rl: rl, gs: gs, rx: make([]float32, max(rl, min(gs, block)))}
	for i := 0; i < tile; i++ {
		s.w = append(s.w, make([]float64, n))
		s.err = append(s.err, make([]float64, block))
		s.fitted = append(s.fitted, make([]bool, (n+gs-1)/gs))
		s.rq = append(s.rq, make([]float32, rl))
	}
	return s
}

// quantizeRows runs GPTQ on rows [r0, r1) and returns their loss.
func (f *Factor) quantizeRows(s *scratch, w []float32, res *Result, r0, r1 int, grid Grid, cfg Config) float64 {
	n, gs, u := f.Cols, res.GroupSize, f.u
	ng := res.Groups()
	nr := r1 - r0
	for k := 0; k < nr; k++ {
		src := w[(r0+k)*n : (r0+k+1)*n]
		dst := s.w[k]
		for p, j := range f.Perm {
			if f.Dead[j] {
				dst[p] = 0
			} else {
				dst[p] = float64(src[j])
			}
		}
		clear(s.fitted[k])
		if cfg.StaticGroups {
			for g := 0; g < ng; g++ {
				c0, c1 := g*gs, min(g*gs+gs, n)
				gw := s.gw[:c1-c0]
				for c := c0; c < c1; c++ {
					gw[c-c0] = float32(dst[f.inv[c]])
				}
				res.Params[(r0+k)*ng+g] = grid.Fit(gw, f.Importance[c0:c1])
				s.fitted[k][g] = true
			}
		}
	}
	var loss float64
	for b0 := 0; b0 < n; b0 += cfg.BlockSize {
		b1 := min(b0+cfg.BlockSize, n)
		s.b1 = b1
		for p := b0; p < b1; p++ {
			d := u[p*n+p]
			c := f.Perm[p]
			g := c / gs
			urow := u[p*n+p+1 : p*n+b1]
			for k := 0; k < nr; k++ {
				row := s.w[k]
				if !s.fitted[k][g] {
					f.fitGroup(s, k, g, p, b0, b1, res, r0+k, grid)
				}
				x := row[p]
				var q float32
				if s.rl > 1 {
					q = f.runValue(s, k, row, p, res.Params[(r0+k)*ng+g], c-g*gs)
				} else {
					q = res.Params[(r0+k)*ng+g].Quantize(c-g*gs, float32(x))
				}
				res.Values[(r0+k)*n+c] = q
				e := (x - float64(q)) / d
				loss += e * e / 2
				s.err[k][p-b0] = e
				if e != 0 {
					kernel.F64SubScaled(row[p+1:b1], urow, e)
				}
			}
		}
		if b1 < n {
			f.lazyUpdate(s, nr, b0, b1)
		}
	}
	return loss
}

// runValue returns the value GPTQ gives column p (element i of its group,
// parameters pp) of tile row k under a RunGrid: at the first column of a
// run the whole run is placed from its current values (which hold every
// earlier column's feedback), and each of its columns then takes its
// placed value, its error going on to the columns after it as GPTQ's.
// Within the run that feedback reaches values already placed, so the
// errors GPTQ records for the run's columns are (x−q)·U_rr⁻¹, x the run's
// values when it was placed: its block of the factor carries the run's
// error to the later columns, as block LDLQ does.
func (f *Factor) runValue(s *scratch, k int, row []float64, p int, pp Params, i int) float32 {
	rl := s.rl
	j := p % rl
	if j == 0 {
		rp, ok := pp.(RunParams)
		if !ok {
			// a RunGrid whose group is not a RunParams: column by column
			for t := 0; t < rl; t++ {
				s.rq[k][t] = pp.Quantize(i+t, float32(row[p+t]))
			}
			return s.rq[k][0]
		}
		// the run and the rest of its group inside the lazy block
		end := min(p-i+s.gs, s.b1)
		x := s.rx[:end-p]
		for t := range x {
			x[t] = float32(row[p+t])
		}
		rp.QuantizeRun(i/rl, x, s.metrics[p*rl:end*rl], s.rq[k])
	}
	return s.rq[k][j]
}

// permuted reports whether the factor's column order is not the natural
// one.
func (f *Factor) permuted() bool {
	for p, j := range f.Perm {
		if p != j {
			return true
		}
	}
	return false
}

// runMetrics returns, for each run of rl columns starting at p (a multiple
// of rl), the rl×rl metric M = U_rr⁻¹·U_rr⁻ᵀ, U_rr the run's diagonal
// block of U: with the run's error e = x − q, GPTQ's scaled errors are
// e·U_rr⁻¹ and its proxy loss grows by their squared norm, eᵀ·M·e (up to
// GPTQ's factor ½). M is the inverse of the run's block of H⁻¹, that is
// the Hessian of the run with every later column free to compensate: the
// block-diagonal factor D of block LDLQ. Runs of M are stored at
// [p·rl, (p+rl)·rl).
func (f *Factor) runMetrics(rl int) []float64 {
	n, u := f.Cols, f.u
	out := make([]float64, n*rl)
	t := make([]float64, rl*rl)
	for p := 0; p+rl <= n; p += rl {
		// T = U_rr⁻¹, upper triangular, by back substitution column by
		// column: U·T = I.
		clear(t)
		for c := 0; c < rl; c++ {
			for i := c; i >= 0; i-- {
				v := 0.0
				if i == c {
					v = 1
				}
				for l := i + 1; l <= c; l++ {
					v -= u[(p+i)*n+p+l] * t[l*rl+c]
				}
				t[i*rl+c] = v / u[(p+i)*n+p+i]
			}
		}
		m := out[p*rl : (p+rl)*rl]
		for i := 0; i < rl; i++ {
			for j := 0; j < rl; j++ {
				var v float64
				for l := max(i, j); l < rl; l++ {
					v += t[i*rl+l] * t[j*rl+l]
				}
				m[i*rl+j] = v
			}
		}
	}
	return out
}

// fitGroup fits group g of tile row k when column p (in block [b0, b1)) is
// its first to be quantized. Its columns inside the block hold current
// values; those beyond still lack this block's pending update, which is
// added here on the fly.
func (f *Factor) fitGroup(s *scratch, k, g, p, b0, b1 int, res *Result, row int, grid Grid) {
	n, gs, u := f.Cols, res.GroupSize, f.u
	c0, c1 := g*gs, min(g*gs+gs, n)
	gw := s.gw[:c1-c0]
	cur := s.w[k]
	pending := s.err[k][:p-b0]
	for c := c0; c < c1; c++ {
		q := f.inv[c]
		v := cur[q]
		if q >= b1 {
			for i, e := range pending {
				v -= e * u[(b0+i)*n+q]
			}
		}
		gw[c-c0] = float32(v)
	}
	res.Params[row*res.Groups()+g] = grid.Fit(gw, f.Importance[c0:c1])
	s.fitted[k][g] = true
}

// lazyUpdate applies block [b0, b1)'s errors to the columns after it:
// w[b1:] −= Σ_i err_i · U[b0+i, b1:], four block rows of U at a time
// (kernel.F64SubScaled4, rounded exactly as the Go expression
// e0·u0 + e1·u1 + e2·u2 + e3·u3 would be).
func (f *Factor) lazyUpdate(s *scratch, nr, b0, b1 int) {
	n, u := f.Cols, f.u
	m := b1 - b0
	i := 0
	for ; i+4 <= m; i += 4 {
		u0 := u[(b0+i)*n+b1 : (b0+i+1)*n]
		u1 := u[(b0+i+1)*n+b1 : (b0+i+2)*n]
		u2 := u[(b0+i+2)*n+b1 : (b0+i+3)*n]
		u3 := u[(b0+i+3)*n+b1 : (b0+i+4)*n]
		for k := 0; k < nr; k++ {
			e := (*[4]float64)(s.err[k][i : i+4])
			if e[0] == 0 && e[1] == 0 && e[2] == 0 && e[3] == 0 {
				continue
			}
			kernel.F64SubScaled4(s.w[k][b1:], u0, u1, u2, u3, e)
		}
	}
	for ; i < m; i++ {
		ui := u[(b0+i)*n+b1 : (b0+i+1)*n]
		for k := 0; k < nr; k++ {
			kernel.F64SubScaled(s.w[k][b1:], ui, s.err[k][i])
		}
	}
}

// Quantizer is GPTQ as a quant.Quantizer: it needs stats.Hessian, uses
// stats.Importance (when given) instead of diag(H) to fit the grid, and
// returns an F32 tensor of the quantized values.
type Quantizer struct {
	Grid   Grid
	Config Config
}

var _ quant.Quantizer = Quantizer{}

// Name is "gptq-" and the grid's name when it has one.
func (q Quantizer) Name() string {
	s := "gptq"
	if nm, ok := q.Grid.(interface{ Name() string }); ok {
		s += "-" + nm.Name()
	}
	if q.Config.ActOrder {
		s += "-act"
	}
	return s
}

// Quantize runs GPTQ on w.
func (q Quantizer) Quantize(w *tensor.Tensor, stats *quant.Stats) (*tensor.Tensor, error) {
	if len(w.Shape) != 2 {
		return nil, fmt.Errorf("gptq: %s: shape %v is not a matrix", w.Name, w.Shape)
	}
	if stats == nil || stats.Hessian == nil {
		return nil, fmt.Errorf("gptq: %s: no Hessian; collect one with calib.Collector.Hessians", w.Name)
	}
	if err := stats.Check(w.Cols()); err != nil {
		return nil, fmt.Errorf("gptq: %s: %w", w.Name, err)
	}
	v, err := ggml.DequantizeTensor(w)
	if err != nil {
		return nil, fmt.Errorf("gptq: %s: %w", w.Name, err)
	}
	f, err := NewFactor(stats.Hessian, w.Cols(), q.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.Name, err)
	}
	if stats.Importance != nil {
		f.Importance = stats.Importance
	}
	r, err := f.Quantize(v, w.Rows(), q.Grid, q.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.Name, err)
	}
	for _, x := range r.Values {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("gptq: %s: non-finite result", w.Name)
		}
	}
	return tensor.FromFloat32(w.Name, w.Shape, r.Values), nil
}
