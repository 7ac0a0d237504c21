// Package kmeans quantizes weights onto learned, non-uniform scalar grids:
// each row of a matrix (or each group of GroupSize consecutive columns of a
// row) gets its own codebook of K = 2^Bits values, fitted by weighted
// k-means in one dimension — the Lloyd–Max quantizer (S. P. Lloyd, "Least
// squares quantization in PCM", IEEE Trans. Inf. Theory 28(2), 1982, from
// a 1957 Bell Labs report; J. Max, "Quantizing for minimum distortion",
// IRE Trans. Inf. Theory 6(1), 1960) — and each weight is stored as the
// Bits-bit index of its codebook entry.
//
// The error that matters is the layer's output error ‖(W−Ŵ)Xᵀ‖² =
// Σ_rows δ H δᵀ (H = XᵀX, see package quant), not the weight error. Two
// levels of that are used:
//
//   - Diagonal: each element's squared error is weighted by its column's
//     importance h_j = E[x_j²] (the diagonal of H up to scale), so Lloyd's
//     centroid update is the importance-weighted mean of its cell,
//     c_k = Σ_{i∈k} h_i w_i / Σ_{i∈k} h_i, and the assignment is the
//     nearest centroid (for a scalar the weight does not move the cell
//     boundaries). Without statistics every column weighs the same.
//   - Full H (Config.GPTQ): the grid is handed to GPTQ (package gptq), which
//     quantizes columns in order and spreads each column's rounding error
//     over the later columns through H⁻¹. A group's codebook is learned
//     (by the weighted k-means above, weights diag H) from the group's
//     current, already error-compensated values when GPTQ reaches it, as
//     GPTQ does for uniform grids; the rounding is to the nearest entry.
//
// k-means is initialised at the weighted quantiles (j+½)/K of the values,
// runs a fixed number of Lloyd iterations (fewer when it converges), moves
// an entry whose cell is empty to the value with the largest weighted
// error, and rounds the codebook to fp16 before the final assignment, so
// the stored codebook is exactly the one the codes were chosen against.
// Everything is deterministic.
//
// Storage (Matrix): codes packed Bits bits per weight, row by row (each
// row starts on a byte boundary; see PackCodes), and Rows×Groups
// codebooks of K fp16 values. Bits per weight = Bits + 16·K/GroupSize
// (rounded up to whole bytes per row); Matrix.Bits reports it exactly.
package kmeans

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/quant/gptq"
	"github.com/terse-llm/terse/tensor"
)

// Config chooses a codebook quantizer.
type Config struct {
	Bits      int // code bits, 2..8: K = 2^Bits entries per codebook
	GroupSize int // columns sharing a codebook; 0: the whole row
	Iters     int // Lloyd iterations; 0: 25
	// GPTQ runs GPTQ over the learned grid (needs Stats.Hessian).
	GPTQ bool
	// GPTQConfig tunes GPTQ (damping, act-order, block size).
	GPTQConfig gptq.Config
}

// Validate reports a setting out of range.
func (c Config) Validate() error {
	if c.Bits < 1 || c.Bits > 8 {
		return fmt.Errorf("kmeans: %d bits, want 1 to 8", c.Bits)
	}
	if c.GroupSize < 0 {
		return fmt.Errorf("kmeans: negative group size %d", c.GroupSize)
	}
	if c.Iters < 0 || c.Iters > 10000 {
		return fmt.Errorf("kmeans: %d iterations, want 0 to 10000", c.Iters)
	}
	return nil
}

func (c Config) iters() int {
	if c.Iters == 0 {
		return 25
	}
	return c.Iters
}

// Name describes the method, e.g. "kmeans-b4-g128-gptq".
func (c Config) Name() string {
	s := fmt.Sprintf("kmeans-b%d", c.Bits)
	if c.GroupSize > 0 {
		s += fmt.Sprintf("-g%d", c.GroupSize)
	}
	if c.GPTQ {
		s += "-gptq"
	}
	return s
}

// Quantize implements quant.Quantizer: it returns a tensor.Codebook tensor
// whose Decoder is the *Matrix.
func (c Config) Quantize(w *tensor.Tensor, stats *quant.Stats) (*tensor.Tensor, error) {
	if len(w.Shape) != 2 {
		return nil, fmt.Errorf("kmeans: tensor %q has shape %v, want a matrix", w.Name, w.Shape)
	}
	src, err := ggml.DequantizeTensor(w)
	if err != nil {
		return nil, fmt.Errorf("kmeans: %w", err)
	}
	m, err := Fit(src, w.Rows(), w.Cols(), stats, c)
	if err != nil {
		return nil, fmt.Errorf("kmeans: tensor %q: %w", w.Name, err)
	}
	return tensor.NewCoded(w.Name, w.Shape, m), nil
}

// Matrix is a codebook-quantized Rows×Cols matrix. It is a
// tensor.RowDecoder.
type Matrix struct {
	Rows, Cols int
	CodeBits   int    // bits per code; K = 1 << CodeBits
	GroupSize  int    // columns per codebook (Cols for whole rows)
	Codes      []byte // Rows × RowBytes(), see PackCodes
	// Codebooks holds Rows×Groups() codebooks of K fp16 values, row-major
	// (the codebook of group g of row r starts at (r·Groups()+g)·K).
	Codebooks []uint16

	cb []float32 // Codebooks widened, set by Check
}

// K is the number of entries per codebook.
func (m *Matrix) K() int { return 1 << m.CodeBits }

// Groups is the number of codebooks per row.
func (m *Matrix) Groups() int { return (m.Cols + m.GroupSize - 1) / m.GroupSize }

// RowBytes is the packed size of one row's codes.
func (m *Matrix) RowBytes() int { return PackedBytes(m.Cols, m.CodeBits) }

// Bits is the exact storage cost per weight: codes and codebooks.
func (m *Matrix) Bits() float64 {
	return float64(8*m.Rows*m.RowBytes()+16*len(m.Codebooks)) / float64(m.Rows*m.Cols)
}

// Check validates the sizes and codebook values and prepares decoding;
// call it on a Matrix built by hand (Fit's are ready).
func (m *Matrix) Check() error {
	if m.Rows <= 0 || m.Cols <= 0 {
		return fmt.Errorf("kmeans: %d×%d matrix", m.Rows, m.Cols)
	}
	if m.CodeBits < 1 || m.CodeBits > 8 {
		return fmt.Errorf("kmeans: %d code bits, want 1 to 8", m.CodeBits)
	}
	if m.GroupSize <= 0 || m.GroupSize > m.Cols {
		return fmt.Errorf("kmeans: group size %d for %d columns", m.GroupSize, m.Cols)
	}
	if len(m.Codes) != m.Rows*m.RowBytes() {
		return fmt.Errorf("kmeans: %d code bytes, want %d", len(m.Codes), m.Rows*m.RowBytes())
	}
	if len(m.Codebooks) != m.Rows*m.Groups()*m.K() {
		return fmt.Errorf("kmeans: %d codebook values, want %d", len(m.Codebooks), m.Rows*m.Groups()*m.K())
	}
	cb := make([]float32, len(m.Codebooks))
	for i, h := range m.Codebooks {
		v := tensor.F16ToF32(h)
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("kmeans: codebook value %d is %g", i, v)
		}
		cb[i] = v
	}
	m.cb = cb
	return nil
}

// DecodeRow writes row r into dst (len Cols).
func (m *Matrix) DecodeRow(r int, dst []float32) error {
	if r < 0 || r >= m.Rows || len(dst) < m.Cols {
		return fmt.Errorf("kmeans: row %d of %d into %d values", r, m.Rows, len(dst))
	}
	if m.cb == nil {
		if err := m.Check(); err != nil {
			return err
		}
	}
	k, gs, bits := m.K(), m.GroupSize, uint(m.CodeBits)
	src := m.Codes[r*m.RowBytes() : (r+1)*m.RowBytes()]
	cbs := m.cb[r*m.Groups()*k : (r+1)*m.Groups()*k]
	mask := uint64(k - 1)
	var acc uint64
	var nb uint
	p := 0
	for g0 := 0; g0 < m.Cols; g0 += gs {
		cb := cbs[g0/gs*k : g0/gs*k+k]
		for i := g0; i < min(g0+gs, m.Cols); i++ {
			if nb < bits {
				acc |= uint64(src[p]) << nb
				p++
				nb += 8
			}
			dst[i] = cb[acc&mask]
			acc >>= bits
			nb -= bits
		}
	}
	return nil
}

// Dequantize returns the whole matrix as float32.
func (m *Matrix) Dequantize() ([]float32, error) {
	out := make([]float32, m.Rows*m.Cols)
	for r := 0; r < m.Rows; r++ {
		if err := m.DecodeRow(r, out[r*m.Cols:(r+1)*m.Cols]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Fit quantizes the rows×cols matrix w (row-major, not modified) under cfg.
// stats may be nil; cfg.GPTQ needs stats.Hessian.
func Fit(w []float32, rows, cols int, stats *quant.Stats, cfg Config) (*Matrix, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rows <= 0 || cols <= 0 || len(w) != rows*cols {
		return nil, fmt.Errorf("kmeans: %d values for a %d×%d matrix", len(w), rows, cols)
	}
	if err := stats.Check(cols); err != nil {
		return nil, fmt.Errorf("kmeans: %w", err)
	}
	gs := cfg.GroupSize
	if gs <= 0 || gs > cols {
		gs = cols
	}
	m := &Matrix{Rows: rows, Cols: cols, CodeBits: cfg.Bits, GroupSize: gs}
	k := m.K()
	ng := m.Groups()
	m.Codes = make([]byte, rows*m.RowBytes())
	m.Codebooks = make([]uint16, rows*ng*k)
	iters := cfg.iters()

	if cfg.GPTQ {
		if stats == nil || stats.Hessian == nil {
			return nil, fmt.Errorf("kmeans: GPTQ needs the Hessian of the layer's inputs")
		}
		g := &Grid{Bits: cfg.Bits, Group: gs, Iters: iters}
		res, err := gptq.Quantize(w, rows, cols, stats.Hessian, g, cfg.GPTQConfig)
		if err != nil {
			return nil, fmt.Errorf("kmeans: %w", err)
		}
		kernel.Parallel(rows, func(lo, hi int) {
			codes := make([]uint16, cols)
			for r := lo; r < hi; r++ {
				for gi := 0; gi < ng; gi++ {
					p := res.Params[r*ng+gi].(*Params)
					copy(m.Codebooks[(r*ng+gi)*k:], p.half)
					for j := gi * gs; j < min((gi+1)*gs, cols); j++ {
						codes[j] = uint16(p.index(res.Values[r*cols+j]))
					}
				}
				PackCodes(m.Codes[r*m.RowBytes():(r+1)*m.RowBytes()], codes, cfg.Bits)
			}
		})
		return m, m.Check()
	}

	var imp []float32
	if stats != nil {
		imp = stats.Importance
		if imp == nil && stats.Hessian != nil {
			imp = make([]float32, cols)
			for j := range imp {
				imp[j] = float32(stats.Hessian[j*cols+j])
			}
		}
	}
	kernel.Parallel(rows, func(lo, hi int) {
		codes := make([]uint16, cols)
		var ws workspace
		for r := lo; r < hi; r++ {
			for gi := 0; gi < ng; gi++ {
				j0, j1 := gi*gs, min((gi+1)*gs, cols)
				var gi32 []float32
				if imp != nil {
					gi32 = imp[j0:j1]
				}
				p := ws.fit(w[r*cols+j0:r*cols+j1], gi32, k, iters)
				copy(m.Codebooks[(r*ng+gi)*k:], p.half)
				for j := j0; j < j1; j++ {
					codes[j] = uint16(p.index(w[r*cols+j]))
				}
			}
			PackCodes(m.Codes[r*m.RowBytes():(r+1)*m.RowBytes()], codes, cfg.Bits)
		}
	})
	return m, m.Check()
}

// Grid is a gptq.Grid whose groups get a learned k-means codebook.
type Grid struct {
	Bits  int // K = 2^Bits
	Group int // columns per codebook (0: whole row)
	Iters int // Lloyd iterations (0: 25)
}

// GroupSize implements gptq.Grid.
func (g *Grid) GroupSize() int { return g.Group }

// Fit implements gptq.Grid: the importance-weighted k-means codebook of w.
func (g *Grid) Fit(w, importance []float32) gptq.Params {
	var ws workspace
	it := g.Iters
	if it == 0 {
		it = 25
	}
	return ws.fit(w, importance, 1<<g.Bits, it)
}

// Params is one group's codebook: K values in increasing order, as fp16
// and widened. It implements gptq.Params.
type Params struct {
	half   []uint16
	Values []float32 // increasing (ties possible)
}

// Quantize implements gptq.Params: the codebook entry nearest to x.
func (p *Params) Quantize(_ int, x float32) float32 { return p.Values[p.index(x)] }

// index is the position of the entry nearest to x (the lower on ties).
func (p *Params) index(x float32) int {
	v := p.Values
	i := sort.Search(len(v), func(i int) bool { return v[i] >= x })
	switch {
	case i == 0:
		return 0
	case i == len(v):
		return len(v) - 1
	case x-v[i-1] <= v[i]-x:
		return i - 1
	}
	return i
}

// workspace holds one goroutine's scratch for fit.
type workspace struct {
	idx    []int
	xs, ws []float64
	pw, ps []float64 // prefix sums of weights and weighted values
	c      []float64
	bound  []int
}

// Lloyd returns the K-entry codebook (increasing, fp16-representable) that
// weighted k-means finds for the values x with weights wt (nil: all 1),
// after iters Lloyd iterations from the weighted-quantile start.
func Lloyd(x, wt []float32, k, iters int) []float32 {
	var ws workspace
	return ws.fit(x, wt, k, iters).Values
}

// fit runs weighted 1-D k-means on x with weights wt (nil or all zero: 1).
// The values are sorted once; a cell is then a contiguous run of them, so
// an iteration costs K binary searches and prefix-sum differences.
func (s *workspace) fit(x, wt []float32, k, iters int) *Params {
	n := len(x)
	s.idx = grow(s.idx, n)
	for i := range s.idx {
		s.idx[i] = i
	}
	slices.SortStableFunc(s.idx, func(a, b int) int {
		switch {
		case x[a] < x[b]:
			return -1
		case x[a] > x[b]:
			return 1
		}
		return 0
	})
	var total float64
	if wt != nil {
		for _, v := range wt {
			total += max(float64(v), 0)
		}
	}
	uniform := !(total > 0) || math.IsInf(total, 0)
	s.xs, s.ws = grow(s.xs, n), grow(s.ws, n)
	s.pw, s.ps = grow(s.pw, n+1), grow(s.ps, n+1)
	for i, j := range s.idx {
		s.xs[i] = float64(x[j])
		w := 1.0
		if !uniform {
			w = max(float64(wt[j]), 0)
		}
		s.ws[i] = w
		s.pw[i+1] = s.pw[i] + w
		s.ps[i+1] = s.ps[i] + w*s.xs[i]
	}
	xs, W := s.xs, s.pw[n]
	s.c = grow(s.c, k)
	c := s.c
	// Weighted quantiles: entry j at the first value whose cumulative
	// weight reaches (j+½)/K of the total.
	for j := range c {
		t := (float64(j) + 0.5) / float64(k) * W
		i := sort.Search(n, func(i int) bool { return s.pw[i+1] >= t })
		c[j] = xs[min(i, n-1)]
	}
	s.bound = grow(s.bound, k+1)
	b := s.bound
	cells := func() {
		// b[j]..b[j+1] are the sorted values nearest to c[j] (c sorted).
		b[0], b[k] = 0, n
		for j := 1; j < k; j++ {
			mid := (c[j-1] + c[j]) / 2
			lo := b[j-1]
			b[j] = lo + sort.Search(n-lo, func(i int) bool { return xs[lo+i] > mid })
		}
	}
	for it := 0; it < iters; it++ {
		slices.Sort(c)
		cells()
		changed := false
		for j := 0; j < k; j++ {
			w := s.pw[b[j+1]] - s.pw[b[j]]
			if w > 0 {
				v := (s.ps[b[j+1]] - s.ps[b[j]]) / w
				if v != c[j] {
					c[j], changed = v, true
				}
				continue
			}
			// Empty cell (or a duplicate entry): move it to the value
			// with the largest weighted error under the current cells.
			if j > 0 && c[j] == c[j-1] || b[j+1] == b[j] {
				if i, e := s.worst(c, b); e > 0 {
					c[j], changed = xs[i], true
					slices.Sort(c)
					cells()
				}
			}
		}
		if !changed {
			break
		}
	}
	p := &Params{half: make([]uint16, k), Values: make([]float32, k)}
	slices.Sort(c)
	for j, v := range c {
		p.half[j] = tensor.F32ToF16(float32(v))
	}
	slices.SortFunc(p.half, func(a, b uint16) int {
		return cmpF(tensor.F16ToF32(a), tensor.F16ToF32(b))
	})
	for j, h := range p.half {
		p.Values[j] = tensor.F16ToF32(h)
	}
	return p
}

// worst is the sorted value with the largest weighted squared distance to
// its cell's entry, and that distance.
func (s *workspace) worst(c []float64, b []int) (int, float64) {
	bi, be := 0, 0.0
	for j := 0; j+1 < len(b); j++ {
		for i := b[j]; i < b[j+1]; i++ {
			d := s.xs[i] - c[j]
			if e := s.ws[i] * d * d; e > be {
				bi, be = i, e
			}
		}
	}
	return bi, be
}

func cmpF(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
