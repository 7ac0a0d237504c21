package gptqggml

import (
	"fmt"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Lattice types (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S)
//
// These code each run of 8 weights as one point of a lattice codebook
// (with its signs), so GPTQ cannot round them a column at a time; Grid's
// RunLen is 8 and GPTQ runs as block LDLQ (see gptq.RunGrid). When GPTQ
// reaches a super-block of 256 columns, Fit encodes the block's current,
// error-compensated values with ggml.Quantize and the block's importance,
// so the super-block scale and the sub-block scales are the ones
// llama.cpp's own search picks for those values, and freezes them. Each
// run of 8 is then placed, when GPTQ reaches it, at the codebook point
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
		imp = nil
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
	var w [ggml.LatticeRun]float32
	for j := range w {
		w[j] = float32(m[j*ggml.LatticeRun+j])
	}
	c := p.lb.Nearest(r, x, w[:], m, LatticeCandidates, q)
	p.lb.Encode(p.blk, r, c)
}

// Err reports a failure of Fit (values of the wrong count, or not finite).
func (p *LatticeParams) Err() error { return p.err }

// AppendBlock appends the block's bytes to dst.
func (p *LatticeParams) AppendBlock(dst []byte) []byte { return append(dst, p.blk...) }

func (p *LatticeParams) dtype() tensor.DType { return p.lb.DType() }
