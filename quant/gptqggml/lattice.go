package gptqggml

import (
	"fmt"
	"math"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Lattice types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S)
//
// These code each run of 8 weights as one point of a lattice codebook
// (with its signs, or for the IQ1 types its shift), so GPTQ cannot round them a column at a time; Grid's
// RunLen is 8 and GPTQ runs as block LDLQ (see gptq.RunGrid). When GPTQ
// reaches a super-block of 256 columns, Fit encodes the block's current,
// error-compensated values with ggml.Quantize and the block's importance,
// so the super-block scale and the sub-block scales are the ones
// llama.cpp's own search picks for those values. When GPTQ reaches a
// sub-block (the 16 or 32 columns sharing a 4-bit scale, 3-bit for the
// IQ1 types), that scale is chosen again from the sub-block's current
// values: the one, among llama.cpp's and its neighbours, whose nearest
// points have the least metric error; for IQ1_S, whose shift sign belongs
// to the group of 32, with that sign (both are tried). Each run of 8 is then placed, when GPTQ reaches it, at
// the codebook point
// nearest its current values (which hold the feedback of every earlier
// column, those of the block's earlier runs included): the 16 points of
// least error weighted by the metric's diagonal are ranked by the full
// 8×8 metric of the run (gptq.RunParams), whose error then goes on to the
// later columns.

// LatticeCandidates is the number of codebook points (ranked by the
// diagonal of the run's metric) that a run's full metric chooses among.
const LatticeCandidates = 16

// LatticeParams is one fitted block of a lattice type: its bytes, with the
// scales ggml.Quantize chose and each run's code as last placed.
type LatticeParams struct {
	lb  ggml.LatticeBlock
	blk []byte
	err error
}

var _ blockParams = (*LatticeParams)(nil)

func (g Grid) fitLattice(w, importance []float32) *LatticeParams {
	p := &LatticeParams{blk: make([]byte, g.dt.BlockBytes())}
	imp := importance
	if allZero(imp) {
		// no column of the block ever saw an input: any weights do, but
		// the 2-bit types refuse to go without
		imp = make([]float32, len(w))
		for i := range imp {
			imp[i] = 1
		}
	}
	if n := g.dt.BlockSize(); len(w) != n {
		p.err = fmt.Errorf("gptqggml: %s block of %d values, want %d", g.dt, len(w), n)
	} else if err := ggml.Quantize(g.dt, w, p.blk, imp); err != nil {
		p.err = err
		clear(p.blk)
	}
	if err := p.lb.Reset(g.dt, p.blk); err != nil && p.err == nil {
		p.err = err
	}
	return p
}

// Quantize returns the value of element i under its run's current code
// (ggml.Quantize's until QuantizeRun places the run); x is not used:
// GPTQ places the runs of a lattice type with QuantizeRun.
func (p *LatticeParams) Quantize(i int, _ float32) float32 {
	var v [ggml.LatticeRun]float32
	r := i / ggml.LatticeRun
	p.lb.Values(r, p.lb.Code(p.blk, r), v[:])
	return v[i%ggml.LatticeRun]
}

// QuantizeRun places run r at the codebook point nearest x in the metric
// m (see gptq.RunParams): the LatticeCandidates points of least error
// weighted by m's diagonal, ranked by m.
func (p *LatticeParams) QuantizeRun(r int, x []float32, m []float64, q []float32) {
	const rl = ggml.LatticeRun
	if sr := p.lb.ScaleRuns(); p.window() > 0 && r%sr == 0 && len(x) >= sr*rl {
		p.rescale(r, x[:sr*rl], m[:sr*rl*rl])
	}
	var w [rl]float32
	for j := range w {
		w[j] = float32(m[j*rl+j])
	}
	c := p.lb.Nearest(r, x[:rl], w[:], m[:rl*rl], LatticeCandidates, q)
	p.lb.Encode(p.blk, r, c)
}

// latticeRescale is how far (in steps of the 4-bit sub-block scale) the
// scale of a sub-block is searched around ggml.Quantize's when GPTQ
// reaches the sub-block (0: kept as ggml.Quantize chose it). On the
// synthetic layer of TestLatticeBeatsRTNAndRounding, against none, ±1
// step changed the proxy loss by −8% to −17% (IQ2_XXS: +2%), ±2 by −11%
// to −20% (IQ2_XXS: +1%) and ±4 by −6% (IQ2_XXS) to −27% (IQ2_S); each
// step costs two more nearest-point searches per run.
const latticeRescale = 4

// latticeRescaleIQ1 is latticeRescale for the IQ1 types, whose 3-bit
// scales have 8 steps (and IQ1_S's two shift signs double the trials). On
// the same layer, against ±4, ±1 changed the proxy loss by −2% (IQ1_S)
// and +5% (IQ1_M), ±2 by −1.5% and +2.5%, none by +28% and +26%; ±1 costs
// 6 trials per IQ1_S group instead of 16 and 3 per IQ1_M half instead of 8.
const latticeRescaleIQ1 = 1

// window is how far rescale searches the sub-block scale.
func (p *LatticeParams) window() int {
	if p.lb.ScaleLevels() == 8 {
		return latticeRescaleIQ1
	}
	return latticeRescale
}

// rescale chooses the sub-block scale of runs r… (x their current values,
// m their metrics) among ggml.Quantize's and its neighbours, by the sum of
// the runs' metric errors when each is placed at its nearest point.
func (p *LatticeParams) rescale(r int, x []float32, m []float64) {
	const rl = ggml.LatticeRun
	if p.lb.Scale(r) == 0 {
		return
	}
	ls0 := p.lb.ScaleIndex(p.blk, r)
	best, bls := math.Inf(1), ls0
	shifts := []bool{p.lb.Shift(r)}
	if p.lb.ShiftPerGroup() {
		// IQ1_S: the group's shift sign is chosen with its scale
		shifts = append(shifts, !shifts[0])
	}
	bneg := shifts[0]
	var w [rl]float32
	var v [rl]float32
	var e [rl]float64
	win := p.window()
	for try := 0; try < len(shifts)*(2*win+1); try++ {
		neg, ls := shifts[try/(2*win+1)], ls0-win+try%(2*win+1)
		if ls < 0 || ls >= p.lb.ScaleLevels() {
			continue
		}
		p.lb.SetScaleIndex(p.blk, r, ls)
		p.lb.SetShift(p.blk, r, neg)
		var cost float64
		for k := 0; k < len(x)/rl; k++ {
			xk, mk := x[k*rl:(k+1)*rl], m[k*rl*rl:(k+1)*rl*rl]
			for j := range w {
				w[j] = float32(mk[j*rl+j])
			}
			p.lb.Nearest(r+k, xk, w[:], mk, 4, v[:])
			for j := range e {
				e[j] = float64(xk[j]) - float64(v[j])
			}
			cost += quadForm(mk, &e)
		}
		if cost < best {
			best, bls, bneg = cost, ls, neg
		}
	}
	p.lb.SetScaleIndex(p.blk, r, bls)
	p.lb.SetShift(p.blk, r, bneg)
}

// quadForm returns eᵀ·m·e for the 8×8 row-major m.
func quadForm(m []float64, e *[ggml.LatticeRun]float64) float64 {
	var q float64
	for i, ei := range e {
		var s float64
		for j, ej := range e {
			s += m[i*ggml.LatticeRun+j] * ej
		}
		q += ei * s
	}
	return q
}

// Err reports a failure of Fit (values of the wrong count, or not finite).
func (p *LatticeParams) Err() error { return p.err }

// AppendBlock appends the block's bytes to dst.
func (p *LatticeParams) AppendBlock(dst []byte) []byte { return append(dst, p.blk...) }

func (p *LatticeParams) dtype() tensor.DType { return p.lb.DType() }
