// Package vq is vector quantization of weight matrices: each row is cut
// into sub-vectors of Dim consecutive weights, and each sub-vector is
// replaced by the index of an entry of a learned codebook of K = 2^CodeBits
// Dim-dimensional vectors, so a weight costs CodeBits/Dim bits plus the
// codebooks' share. Three layouts:
//
//   - VQ: one codebook per matrix (or per group of RowGroup rows).
//   - RVQ (Stages = 2): residual VQ; a second codebook quantizes what the
//     first left, ŵ = C¹[i] + C²[j] (Juang & Gray, "Multiple stage vector
//     quantization for speech coding", ICASSP 1982; the additive codebooks
//     of AQLM, Egiazarian et al., "Extreme Compression of Large Language
//     Models via Additive Quantization", arXiv:2401.06118).
//   - PQ (Segments > 1): product quantization; the columns are cut into
//     Segments ranges, each with its own codebook (Jégou, Douze, Schmid,
//     "Product Quantization for Nearest Neighbor Search", IEEE TPAMI 33(1),
//     2011).
//
// Every row is first divided by its own fp16 scale (its RMS), as AQLM
// keeps per-output-channel scales, so one codebook serves rows of
// different magnitudes.
//
// What is minimised is the layer's output error Σ_r (w_r−ŵ_r) H (w_r−ŵ_r)ᵀ
// with H = XᵀX (see package quant); with scales, Σ_r s_r² (u_r−û_r) H
// (u_r−û_r)ᵀ for the normalised rows u_r = w_r/s_r.
//
//  1. Codebooks start from weighted k-means (k-means++ seeding from a fixed
//     seed, then Lloyd) under the diagonal of H: element j of row r weighs
//     s_r²·h_j with h_j the importance E[x_j²] (or diag H); the entry
//     update is the per-coordinate weighted mean of its cell. Stages are
//     fitted one after the other on the residual.
//  2. With a Hessian and Refine > 0, rounds of two steps, each of which can
//     only lower the full-H objective (up to fp16 rounding):
//     - codebook update: with the codes fixed, ŵ is linear in one
//     codebook's entries c, so the best c solves the least-squares
//     normal equations A c = b with A = Σ_r s_r² P_rᵀ H P_r and
//     b = Σ_r s_r² P_rᵀ H e_r (P_r places entries where row r uses them,
//     e_r the residual without this codebook's share) — AQLM's codebook
//     step done in closed form rather than by Adam. When K·Dim > 1024 the
//     cross terms between different sub-vectors are dropped (A
//     block-diagonal, the "diagonal H" approximation per sub-vector).
//     Codebooks are updated one at a time (block coordinate descent), a
//     small ridge pulling unused entries to their old values.
//     - code update: each row's codes are revisited sub-vector by
//     sub-vector, left to right, and replaced by the entry that lowers
//     (u−û)H(u−û)ᵀ most given all other codes (keeping g = H(u−û) up to
//     date): greedy coordinate descent, the beam-1 case of AQLM's beam
//     search and the discrete step of PV-Tuning (Malinovskii et al.,
//     "PV-Tuning: Beyond Straight-Through Estimation for Extreme LLM
//     Compression", arXiv:2405.14852), here against the layer proxy.
//
// Storage (Matrix): codes packed CodeBits bits each (sub-vector by
// sub-vector, stages innermost, each row starting on a byte), codebooks as
// fp16 [Stages][RowGroups][Segments][K][Dim], one fp16 scale per row.
// Matrix.Bits reports the exact bits per weight: CodeBits·Stages/Dim +
// (16·codebook values + 16·Rows)/(Rows·Cols), up to the byte rounding of
// each row.
package vq

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/quant/kmeans"
	"github.com/terse-llm/terse/tensor"
)

// Config chooses a vector quantizer.
type Config struct {
	Dim      int // sub-vector length d, 1..8
	CodeBits int // code bits k per sub-vector and stage, 1..16: K = 2^k
	Stages   int // 0 or 1: VQ; 2: residual VQ
	Segments int // 0 or 1: one codebook across the row; >1: PQ
	RowGroup int // rows sharing codebooks; 0: the whole matrix
	Iters    int // Lloyd iterations per codebook; 0: 20
	// Refine is the number of H-aware codebook-and-code rounds (needs
	// Stats.Hessian; ignored without one).
	Refine int
	// Damp is the relative diagonal damping of H for refinement
	// (0: 0.01, as GPTQ).
	Damp float64
	// NoScale stores every row scale as 1 (for data already normalised).
	NoScale bool
	Seed    uint64 // k-means++ seed
}

func (c Config) withDefaults() Config {
	if c.Stages == 0 {
		c.Stages = 1
	}
	if c.Segments == 0 {
		c.Segments = 1
	}
	if c.Iters == 0 {
		c.Iters = 20
	}
	if c.Damp == 0 {
		c.Damp = 0.01
	}
	return c
}

// Validate reports a setting out of range.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Dim < 1 || c.Dim > 8:
		return fmt.Errorf("vq: dimension %d, want 1 to 8", c.Dim)
	case c.CodeBits < 1 || c.CodeBits > 16:
		return fmt.Errorf("vq: %d code bits, want 1 to 16", c.CodeBits)
	case c.Stages < 1 || c.Stages > 4:
		return fmt.Errorf("vq: %d stages, want 1 to 4", c.Stages)
	case c.Segments < 1:
		return fmt.Errorf("vq: %d segments", c.Segments)
	case c.RowGroup < 0:
		return fmt.Errorf("vq: negative row group %d", c.RowGroup)
	case c.Iters < 0 || c.Refine < 0 || c.Damp < 0:
		return fmt.Errorf("vq: negative iterations, refinement rounds or damping")
	}
	return nil
}

// Method is "rvq" with several stages, "pq" with several segments, else
// "vq".
func (c Config) Method() string {
	switch {
	case c.Stages > 1:
		return "rvq"
	case c.Segments > 1:
		return "pq"
	}
	return "vq"
}

// Name describes the settings, e.g. "rvq-d4-k8x2-r2".
func (c Config) Name() string {
	c = c.withDefaults()
	s := fmt.Sprintf("%s-d%d-k%d", c.Method(), c.Dim, c.CodeBits)
	if c.Stages > 1 {
		s += fmt.Sprintf("x%d", c.Stages)
	}
	if c.Segments > 1 {
		s += fmt.Sprintf("-p%d", c.Segments)
	}
	if c.RowGroup > 0 {
		s += fmt.Sprintf("-rg%d", c.RowGroup)
	}
	if c.Refine > 0 {
		s += fmt.Sprintf("-r%d", c.Refine)
	}
	return s
}

// Quantize implements quant.Quantizer: it returns a tensor.Codebook tensor
// whose Decoder is the *Matrix.
func (c Config) Quantize(w *tensor.Tensor, stats *quant.Stats) (*tensor.Tensor, error) {
	if len(w.Shape) != 2 {
		return nil, fmt.Errorf("vq: tensor %q has shape %v, want a matrix", w.Name, w.Shape)
	}
	src, err := ggml.DequantizeTensor(w)
	if err != nil {
		return nil, fmt.Errorf("vq: %w", err)
	}
	m, err := Fit(src, w.Rows(), w.Cols(), stats, c)
	if err != nil {
		return nil, fmt.Errorf("vq: tensor %q: %w", w.Name, err)
	}
	return tensor.NewCoded(w.Name, w.Shape, m), nil
}

// Matrix is a vector-quantized Rows×Cols matrix; it is a
// tensor.RowDecoder.
type Matrix struct {
	Rows, Cols int
	Dim        int // sub-vector length
	CodeBits   int // K = 1 << CodeBits
	Stages     int
	Segments   int
	RowGroup   int    // rows per codebook set (Rows: one set)
	Codes      []byte // Rows × RowBytes()
	// Codebooks is [Stages][RowGroups()][Segments][K][Dim] fp16.
	Codebooks []uint16
	Scales    []uint16 // one fp16 scale per row

	cb, sc []float32
}

// K is the number of entries per codebook.
func (m *Matrix) K() int { return 1 << m.CodeBits }

// Subs is the number of sub-vectors per row.
func (m *Matrix) Subs() int { return m.Cols / m.Dim }

// RowGroups is the number of row groups.
func (m *Matrix) RowGroups() int { return (m.Rows + m.RowGroup - 1) / m.RowGroup }

// SegLen is the number of sub-vectors per segment (the last may be
// shorter).
func (m *Matrix) SegLen() int { return (m.Subs() + m.Segments - 1) / m.Segments }

// RowBytes is the packed size of one row's codes.
func (m *Matrix) RowBytes() int { return kmeans.PackedBytes(m.Subs()*m.Stages, m.CodeBits) }

// book is the offset of a codebook in Codebooks.
func (m *Matrix) book(stage, rg, seg int) int {
	return ((stage*m.RowGroups()+rg)*m.Segments + seg) * m.K() * m.Dim
}

// Bits is the exact storage cost per weight: codes, codebooks and scales.
func (m *Matrix) Bits() float64 {
	return float64(8*m.Rows*m.RowBytes()+16*len(m.Codebooks)+16*len(m.Scales)) / float64(m.Rows*m.Cols)
}

// Method is "vq", "rvq" or "pq".
func (m *Matrix) Method() string {
	return Config{Stages: m.Stages, Segments: m.Segments}.Method()
}

// Check validates sizes and values and prepares decoding; call it on a
// Matrix built by hand (Fit's are ready).
func (m *Matrix) Check() error {
	switch {
	case m.Rows <= 0 || m.Cols <= 0:
		return fmt.Errorf("vq: %d×%d matrix", m.Rows, m.Cols)
	case m.Dim < 1 || m.Dim > 8 || m.Cols%m.Dim != 0:
		return fmt.Errorf("vq: dimension %d for %d columns", m.Dim, m.Cols)
	case m.CodeBits < 1 || m.CodeBits > 16:
		return fmt.Errorf("vq: %d code bits", m.CodeBits)
	case m.Stages < 1 || m.Stages > 4:
		return fmt.Errorf("vq: %d stages", m.Stages)
	case m.Segments < 1 || m.Segments > m.Subs() || (m.Subs()+m.SegLen()-1)/m.SegLen() != m.Segments:
		return fmt.Errorf("vq: %d segments do not split %d sub-vectors evenly", m.Segments, m.Subs())
	case m.RowGroup < 1 || m.RowGroup > m.Rows:
		return fmt.Errorf("vq: row group %d for %d rows", m.RowGroup, m.Rows)
	case len(m.Codes) != m.Rows*m.RowBytes():
		return fmt.Errorf("vq: %d code bytes, want %d", len(m.Codes), m.Rows*m.RowBytes())
	case len(m.Codebooks) != m.book(m.Stages, 0, 0):
		return fmt.Errorf("vq: %d codebook values, want %d", len(m.Codebooks), m.book(m.Stages, 0, 0))
	case len(m.Scales) != m.Rows:
		return fmt.Errorf("vq: %d scales for %d rows", len(m.Scales), m.Rows)
	}
	cb := make([]float32, len(m.Codebooks))
	for i, h := range m.Codebooks {
		if cb[i] = tensor.F16ToF32(h); !finite(cb[i]) {
			return fmt.Errorf("vq: codebook value %d is %g", i, cb[i])
		}
	}
	sc := make([]float32, len(m.Scales))
	for i, h := range m.Scales {
		if sc[i] = tensor.F16ToF32(h); !finite(sc[i]) {
			return fmt.Errorf("vq: scale %d is %g", i, sc[i])
		}
	}
	m.cb, m.sc = cb, sc
	return nil
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// DecodeRow writes row r into dst (len Cols).
func (m *Matrix) DecodeRow(r int, dst []float32) error {
	if r < 0 || r >= m.Rows || len(dst) < m.Cols {
		return fmt.Errorf("vq: row %d of %d into %d values", r, m.Rows, len(dst))
	}
	if m.cb == nil {
		if err := m.Check(); err != nil {
			return err
		}
	}
	d, k, bits := m.Dim, m.K(), uint(m.CodeBits)
	src := m.Codes[r*m.RowBytes() : (r+1)*m.RowBytes()]
	rg, segLen, s := r/m.RowGroup, m.SegLen(), m.sc[r]
	mask := uint64(k - 1)
	var acc uint64
	var nb uint
	q := 0
	for p := 0; p < m.Subs(); p++ {
		out := dst[p*d : p*d+d]
		clear(out)
		for st := 0; st < m.Stages; st++ {
			for nb < bits {
				acc |= uint64(src[q]) << nb
				q++
				nb += 8
			}
			code := int(acc & mask)
			acc >>= bits
			nb -= bits
			e := m.cb[m.book(st, rg, p/segLen)+code*d:]
			for t := range out {
				out[t] += e[t]
			}
		}
		for t := range out {
			out[t] *= s
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

// ProxyLoss is Σ_r (w_r−ŵ_r) H (w_r−ŵ_r)ᵀ = tr((W−Ŵ)H(W−Ŵ)ᵀ) for
// rows×cols matrices and the cols×cols H: the layer's squared output
// error on the calibration inputs.
func ProxyLoss(w, what []float32, rows, cols int, h []float64) float64 {
	var total float64
	e := make([]float64, cols)
	for r := 0; r < rows; r++ {
		for j := range e {
			e[j] = float64(w[r*cols+j]) - float64(what[r*cols+j])
		}
		for i := 0; i < cols; i++ {
			if e[i] == 0 {
				continue
			}
			total += e[i] * dot(h[i*cols:(i+1)*cols], e)
		}
	}
	return total
}

func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1 float64
	i := 0
	for ; i+2 <= len(a); i += 2 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
	}
	if i < len(a) {
		s0 += a[i] * b[i]
	}
	return s0 + s1
}

// parallel splits [0, n) into at most maxT (0: kernel.Threads()) fixed
// chunks and runs fn(chunk, lo, hi) for each on the kernel pool; the chunk
// layout does not depend on scheduling, so per-chunk results combine the
// same way every time.
func parallel(n, maxT int, fn func(worker, lo, hi int)) {
	t := kernel.Threads()
	if maxT > 0 {
		t = min(t, maxT)
	}
	kernel.ParallelChunks(n, t, fn)
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x7e75e)) }
