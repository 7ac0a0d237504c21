// Package gptqggml runs GPTQ (package gptq) onto llama.cpp's block formats,
// so that its output is a ggml tensor llama.cpp loads as it is.
//
// Each ggml block is one GPTQ group: GroupSize is the type's block size (32
// or 256 consecutive columns of a row). When GPTQ reaches a block, Fit
// quantizes the block's current, error-compensated values with
// ggml.Quantize and the block's importance, so the scales and mins are the
// ones llama.cpp's own search (quantize_row_*_impl) picks for those values;
// those scales are then frozen, and GPTQ rounds each column of the block to
// the nearest value the block can represent under them (ggml.BlockGrid),
// spreading the rounding error over the columns not yet quantized. At the
// end each block's bytes are its scales with the codes GPTQ chose
// (ggml.BlockGrid.Encode), so the tensor dequantizes exactly to GPTQ's
// result.
//
// Importance, the weights of llama.cpp's search, is the imatrix
// (quant.Stats.Importance) when given, else diag(H)/Samples, which is the
// same mean squared activation. One difference from llama-quantize: the
// legacy types' weighted search (Q4_0, Q4_1, Q5_0, Q5_1) mixes in σ², the
// mean square of the whole row, and here the row is one block, so their
// scales can differ slightly from a row-at-once quantization. The k-quants
// and IQ4 types compute σ² per block or super-block and are unaffected.
//
// Column order: ggml blocks are contiguous runs of a row, and gptq keeps its
// groups contiguous in the original column order with or without
// act-order, so every gptq.Config is valid. Without act-order a block is
// fitted when GPTQ reaches its first column, after all earlier columns'
// error has been spread into it. With ActOrder a block is fitted when its
// most important column comes up, from values that have not yet received
// the updates of columns quantized later; with StaticGroups every block is
// fitted from the original weights up front. The zero Config (no
// act-order, damping 0.01) is the recommended one: on pdtext-llama-28m,
// act-order changed held-out output error by a few percent either way on
// the 512-wide inputs and made it clearly worse on ffn_down.
//
// Calibration size matters more than any setting: GPTQ fits the
// calibration inputs, and with too few tokens for a wide input the Hessian
// is noisy and GPTQ overfits it. On that model's ffn_down (1536 inputs),
// 4096 tokens gave 0.60× the imatrix-weighted ggml.Quantize's output error
// on the calibration inputs but 1.36× on held-out text; 16384 tokens gave
// 0.99× held-out (0.93× with Damp 0.3–1), while the 512-wide matrices were
// at 0.47–0.57× held-out. Use at least 10–20 tokens per input column.
package gptqggml

import (
	"fmt"
	"math"

	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/quant/gptq"
	"github.com/terse-llm/terse/tensor"
)

// Grid is the gptq.Grid of one ggml block type.
type Grid struct {
	dt tensor.DType
}

var _ gptq.RunGrid = Grid{}

// Supported reports whether NewGrid handles type dt.
func Supported(dt tensor.DType) bool {
	return (ggml.GridSupported(dt) || ggml.LatticeSupported(dt)) && ggml.QuantizeSupported(dt)
}

// NewGrid returns the grid of block type dt: one of Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, or one
// of the lattice types IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
// IQ3_S (see Lattice).
func NewGrid(dt tensor.DType) (Grid, error) {
	if !Supported(dt) {
		return Grid{}, fmt.Errorf("gptqggml: type %s is not a supported block type", dt)
	}
	return Grid{dt}, nil
}

// RunLen is 8 (ggml.LatticeRun) for the lattice types, whose runs of 8
// are GPTQ's unit (block LDLQ), and 1 for the others.
func (g Grid) RunLen() int {
	if ggml.LatticeSupported(g.dt) {
		return ggml.LatticeRun
	}
	return 1
}

// DType is the grid's block type.
func (g Grid) DType() tensor.DType { return g.dt }

// Name is "ggml-" and the type's name, e.g. "ggml-q4_K".
func (g Grid) Name() string { return "ggml-" + g.dt.String() }

// GroupSize is the type's block size.
func (g Grid) GroupSize() int { return g.dt.BlockSize() }

// Fit encodes one block with ggml.Quantize (importance as its
// quant_weights; all-zero importance counts as none) and returns its
// grid; for the ternary types the scale is then chosen again by
// importance-weighted error (see Ternary). w must hold exactly one block
// of values.
func (g Grid) Fit(w, importance []float32) gptq.Params {
	if ggml.LatticeSupported(g.dt) {
		return g.fitLattice(w, importance)
	}
	nb, n := g.dt.BlockBytes(), g.dt.BlockSize()
	buf := make([]byte, nb+n)
	p := &Params{blk: buf[:nb:nb], codes: buf[nb:]}
	imp := importance
	if allZero(imp) {
		imp = nil
	}
	if len(w) != n {
		p.err = fmt.Errorf("gptqggml: %s block of %d values, want %d", g.dt, len(w), n)
	} else if err := ggml.Quantize(g.dt, w, p.blk, imp); err != nil {
		p.err = err
		clear(p.blk)
	}
	ternary := p.err == nil && isTernary(g.dt)
	if ternary {
		setTernaryScale(g.dt, p.blk, ternaryScale(w, imp))
	}
	if err := p.grid.Reset(g.dt, p.blk); err != nil && p.err == nil {
		p.err = err
	}
	if p.err == nil {
		var codes [256]int
		p.grid.Codes(p.blk, codes[:n])
		for i, c := range codes[:n] {
			if ternary {
				// the codes under the new scale
				c, _ = p.grid.Nearest(i, w[i])
			}
			p.codes[i] = uint8(c)
		}
	}
	return p
}

func allZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// Params is one fitted block: its encoded bytes (the scales as
// ggml.Quantize chose them), its grid and the code of every element as
// last chosen by Quantize (initially ggml.Quantize's own codes).
type Params struct {
	grid  ggml.BlockGrid
	blk   []byte
	codes []uint8
	err   error
}

// Quantize returns the value nearest x that element i of the block can
// take under the block's scales, and remembers its code.
func (p *Params) Quantize(i int, x float32) float32 {
	c, v := p.grid.Nearest(i, x)
	p.codes[i] = uint8(c)
	return v
}

func (p *Params) dtype() tensor.DType { return p.grid.DType() }

// blockParams is what Assemble needs of a fitted block.
type blockParams interface {
	Err() error
	AppendBlock(dst []byte) []byte
	dtype() tensor.DType
}

// Grid is the block's grid.
func (p *Params) Grid() *ggml.BlockGrid { return &p.grid }

// Err reports a failure of Fit (values of the wrong count, or not finite).
func (p *Params) Err() error { return p.err }

// AppendBlock appends the block's bytes, with the remembered codes, to dst.
func (p *Params) AppendBlock(dst []byte) []byte {
	o := len(dst)
	dst = append(dst, p.blk...)
	var codes [256]int
	n := p.grid.Len()
	for i, c := range p.codes[:n] {
		codes[i] = int(c)
	}
	p.grid.Encode(codes[:n], dst[o:])
	return dst
}

// Importance returns the importance Fit uses for a matrix with these
// statistics: stats.Importance when present, else diag(H)/Samples (nil
// when stats has neither).
func Importance(stats *quant.Stats, cols int) []float32 {
	if stats == nil {
		return nil
	}
	if stats.Importance != nil {
		return stats.Importance
	}
	if stats.Hessian == nil || len(stats.Hessian) != cols*cols {
		return nil
	}
	n := float64(max(stats.Samples, 1))
	imp := make([]float32, cols)
	for j := range imp {
		imp[j] = float32(max(stats.Hessian[j*cols+j], 0) / n)
	}
	return imp
}

// NewFactor factorises stats.Hessian for GPTQ under cfg and sets the
// factor's Importance as Importance(stats, cols) does. Matrices that share
// an input (attn_q/k/v, ffn_gate/up) can share one Factor.
func NewFactor(stats *quant.Stats, cols int, cfg gptq.Config) (*gptq.Factor, error) {
	if stats == nil || stats.Hessian == nil {
		return nil, fmt.Errorf("gptqggml: no Hessian; collect one with calib.Collector.Hessians")
	}
	if err := stats.Check(cols); err != nil {
		return nil, fmt.Errorf("gptqggml: %w", err)
	}
	f, err := gptq.NewFactor(stats.Hessian, cols, cfg)
	if err != nil {
		return nil, err
	}
	f.Importance = Importance(stats, cols)
	return f, nil
}

// QuantizeMatrix runs GPTQ on the rows×cols matrix w (row-major, not
// modified) onto block type dt with the Hessian and importance of stats,
// and returns the matrix as ggml rows (rows·dt.RowBytes(cols) bytes),
// ready for a GGUF tensor. cols must be a multiple of dt's block size.
func QuantizeMatrix(dt tensor.DType, w []float32, rows, cols int, stats *quant.Stats, cfg gptq.Config) ([]byte, error) {
	if err := checkShape(dt, w, rows, cols); err != nil {
		return nil, err
	}
	f, err := NewFactor(stats, cols, cfg)
	if err != nil {
		return nil, err
	}
	data, _, err := QuantizeFactor(dt, f, w, rows, cfg)
	return data, err
}

// QuantizeFactor is QuantizeMatrix with a prepared factor (see NewFactor;
// cfg must agree with the one f was made with in ActOrder and Damp). It
// also returns GPTQ's result, whose Values are exactly what the bytes
// dequantize to.
func QuantizeFactor(dt tensor.DType, f *gptq.Factor, w []float32, rows int, cfg gptq.Config) ([]byte, *gptq.Result, error) {
	if err := checkShape(dt, w, rows, f.Cols); err != nil {
		return nil, nil, err
	}
	g, err := NewGrid(dt)
	if err != nil {
		return nil, nil, err
	}
	r, err := f.Quantize(w, rows, g, cfg)
	if err != nil {
		return nil, nil, err
	}
	data, err := Assemble(dt, r)
	if err != nil {
		return nil, nil, err
	}
	return data, r, nil
}

// Assemble builds the ggml bytes of a gptq.Result made with the Grid of
// type dt: each row's blocks in order, each the fitted block with the codes
// GPTQ chose.
func Assemble(dt tensor.DType, r *gptq.Result) ([]byte, error) {
	if r.GroupSize != dt.BlockSize() || r.Cols%r.GroupSize != 0 {
		return nil, fmt.Errorf("gptqggml: result groups of %d over %d columns do not match %s blocks", r.GroupSize, r.Cols, dt)
	}
	for _, v := range r.Values {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("gptqggml: %s: non-finite quantized value", dt)
		}
	}
	rowBytes, err := dt.RowBytes(r.Cols)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, r.Rows*rowBytes)
	for i, pp := range r.Params {
		p, ok := pp.(blockParams)
		if !ok || p.dtype() != dt {
			return nil, fmt.Errorf("gptqggml: group %d was not fitted by the %s grid", i, dt)
		}
		if err := p.Err(); err != nil {
			return nil, fmt.Errorf("gptqggml: row %d block %d: %w", i/r.Groups(), i%r.Groups(), err)
		}
		out = p.AppendBlock(out)
	}
	return out, nil
}

func checkShape(dt tensor.DType, w []float32, rows, cols int) error {
	bs := dt.BlockSize()
	if bs <= 1 || !Supported(dt) {
		return fmt.Errorf("gptqggml: type %s is not a supported block type", dt)
	}
	if rows < 0 || cols <= 0 || len(w) != rows*cols {
		return fmt.Errorf("gptqggml: %d values for a %d×%d matrix", len(w), rows, cols)
	}
	if cols%bs != 0 {
		return fmt.Errorf("gptqggml: %s: row length %d is not a multiple of the block size %d", dt, cols, bs)
	}
	return nil
}
