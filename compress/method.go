package compress

import (
	"fmt"
	"sync"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/quant/gptq"
	"github.com/terse-llm/terse/quant/gptqggml"
	"github.com/terse-llm/terse/quant/kmeans"
	"github.com/terse-llm/terse/quant/vq"
	"github.com/terse-llm/terse/tensor"
)

// Method names.
const (
	// MethodRTN is llama.cpp's quantizer: per block, a search over scales
	// that minimises the importance-weighted squared error of rounding.
	MethodRTN = "rtn"
	// MethodGPTQ quantizes column by column onto the same block grids,
	// spreading each column's error over the columns not yet quantized
	// through the inverse Hessian of the layer's inputs.
	MethodGPTQ = "gptq"
)

// Output is the kind of file a method's tensors are written to.
type Output string

// Outputs.
const (
	// GGUF is llama.cpp's file (package convert): ggml block types.
	GGUF Output = "gguf"
	// Native is terse's own file (package format/native): learned
	// codebooks, run coded.
	Native Output = "native"
)

// Method compresses one weight matrix. Run plans a target element type for
// every matrix (Plan) and calls the matrix's method for the targets that
// are not plain float types (those are converted, or copied, by Run
// itself). A Method must not modify t and may be called from one goroutine
// at a time (it may fan out internally through the kernel pool).
//
// The seam leaves room for what comes next: the plan may give tensors
// different methods (QuantizeOptions.MethodFor) and types (a searched
// allocation is a Plan), and Compressed can grow fields (a low-rank
// adapter, a sparsity mask) without changing the interface.
type Method interface {
	// Name identifies the method ("rtn", "gptq", "kmeans", "vq", ...).
	Name() string
	// NeedsHessian reports whether Compress uses stats.Hessian, so that
	// Run collects Hessians from calibration text (and refuses to run
	// without it).
	NeedsHessian() bool
	// Output is the file kind that can hold the method's tensors.
	Output() Output
	// Compress compresses t to the planned target type (a ggml block type
	// for GGUF methods, tensor.Codebook for native ones). stats may be nil.
	Compress(t *tensor.Tensor, target tensor.DType, stats *quant.Stats) (*Compressed, error)
}

// Compressed is one compressed matrix.
type Compressed struct {
	// Tensor replaces the original: same name and shape.
	Tensor *tensor.Tensor
	// How says what was done, for the report: the method's full name
	// ("kmeans-b4-g256"), or "rtn" where GPTQ had no Hessian.
	How string
}

// RTN is llama.cpp's round-to-nearest block quantizer with importance
// weights (quant/ggml): byte-identical with llama-quantize.
type RTN struct{}

// Name is "rtn".
func (RTN) Name() string { return MethodRTN }

// NeedsHessian is false.
func (RTN) NeedsHessian() bool { return false }

// Output is GGUF.
func (RTN) Output() Output { return GGUF }

// Compress quantizes t to target with stats.Importance (if any).
func (RTN) Compress(t *tensor.Tensor, target tensor.DType, stats *quant.Stats) (*Compressed, error) {
	var imp []float32
	if stats != nil {
		imp = stats.Importance
	}
	nt, err := ggmlQuantize(t, target, imp)
	if err != nil {
		return nil, err
	}
	return &Compressed{Tensor: nt, How: MethodRTN}, nil
}

// GPTQ runs GPTQ onto a ggml block grid (quant/gptqggml: the scales of each
// block are chosen by llama.cpp's own search on the error-compensated
// weights); onto the lattice types (IQ1_S, IQ1_M, IQ2_XXS … IQ3_S) it
// places runs of 8 weights at a time (block LDLQ), and it rounds the
// ternary TQ1_0 and TQ2_0 column by column like the scalar types. A matrix
// without a Hessian (the token embedding, whose input is not a product)
// and a type gptqggml.Supported refuses (none of the quantized types
// today) are quantized as RTN does.
type GPTQ struct {
	// Damp is the Hessian damping as a fraction of its mean diagonal, in
	// [0, 1); 0 means gptq's default (0.01).
	Damp float64
}

// NewGPTQ checks the damping.
func NewGPTQ(damp float64) (GPTQ, error) {
	if !(damp >= 0 && damp < 1) {
		return GPTQ{}, fmt.Errorf("gptq: damping %g, want 0 ≤ damp < 1", damp)
	}
	return GPTQ{Damp: damp}, nil
}

// Name is "gptq".
func (GPTQ) Name() string { return MethodGPTQ }

// NeedsHessian is true.
func (GPTQ) NeedsHessian() bool { return true }

// Output is GGUF.
func (GPTQ) Output() Output { return GGUF }

// Compress runs GPTQ when stats has a Hessian, RTN otherwise.
func (g GPTQ) Compress(t *tensor.Tensor, target tensor.DType, stats *quant.Stats) (*Compressed, error) {
	return g.compress(t, target, stats, nil)
}

// factorCache shares GPTQ factors between the matrices of one stage whose
// statistics hold the very same Hessian slice (calib.Collector.SharedStats
// gives attn_q, attn_k and attn_v one; ffn_gate and ffn_up another). It
// must not outlive the Hessians it is keyed by.
type factorCache map[*float64]*gptq.Factor

// gptqSlab is the number of weights GPTQ.Compress widens to float32 at a
// time: rows are independent given the factor, so a tall matrix (a
// 128256-row embedding) goes through in slabs of rows instead of as one
// float32 copy with its per-block grids.
const gptqSlab = 1 << 24

// compress is Compress with the factor taken from, or put in, cache (nil:
// no sharing). The result is the same either way: a shared factor is the
// one the matrix's own Hessian would give, with the matrix's own
// importance.
func (g GPTQ) compress(t *tensor.Tensor, target tensor.DType, stats *quant.Stats, cache factorCache) (*Compressed, error) {
	if stats == nil || stats.Hessian == nil || !target.Quantized() || !gptqggml.Supported(target) {
		// no Hessian (the token embedding), a float type, or a type GPTQ
		// has no grid for
		return RTN{}.Compress(t, target, stats)
	}
	rows, cols := t.Rows(), t.Cols()
	if bs := target.BlockSize(); bs <= 1 || cols%bs != 0 {
		return nil, fmt.Errorf("gptqggml: %s: row length %d is not a multiple of the block size %d", target, cols, bs)
	}
	rb, err := target.RowBytes(cols)
	if err != nil {
		return nil, err
	}
	cfg := gptq.Config{Damp: g.Damp}
	var f *gptq.Factor
	if cache != nil && len(stats.Hessian) > 0 {
		if shared := cache[&stats.Hessian[0]]; shared != nil && shared.Cols == cols {
			c := *shared
			c.Importance = gptqggml.Importance(stats, cols)
			f = &c
		}
	}
	if f == nil {
		if f, err = gptqggml.NewFactor(stats, cols, cfg); err != nil {
			return nil, err
		}
		if cache != nil {
			cache[&stats.Hessian[0]] = f
		}
	}
	out := make([]byte, rows*rb)
	slab := max(1, min(rows, gptqSlab/cols))
	buf := make([]float32, slab*cols)
	for r0 := 0; r0 < rows; r0 += slab {
		r1 := min(r0+slab, rows)
		w := buf[:(r1-r0)*cols]
		if err := widenRows(t, r0, r1, w); err != nil {
			return nil, err
		}
		if t.Decoder == nil {
			// The slab is not read again here: a mapped checkpoint's
			// pages of it may go (a 128256-row embedding is 500 MiB).
			evict(t.Data[r0*len(t.Data)/rows : r1*len(t.Data)/rows])
		}
		b, _, err := gptqggml.QuantizeFactor(target, f, w, r1-r0, cfg)
		if err != nil {
			return nil, err
		}
		copy(out[r0*rb:r1*rb], b)
	}
	nt := &tensor.Tensor{Name: t.Name, DType: target, Shape: append([]int(nil), t.Shape...), Data: out}
	return &Compressed{Tensor: nt, How: MethodGPTQ}, nil
}

// Codebook is a learned-codebook method (quant/kmeans, quant/vq) whose
// matrices are written to a native file and run coded.
type Codebook struct {
	name  string
	q     quant.Quantizer
	needH bool
}

// NewKMeans is scalar k-means codebooks (method "kmeans"); with c.GPTQ it
// needs Hessians.
func NewKMeans(c kmeans.Config) (*Codebook, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Codebook{name: "kmeans", q: c, needH: c.GPTQ}, nil
}

// NewVQ is vector quantization: method "vq", "rvq" (c.Stages > 1) or "pq"
// (c.Segments > 1), which must agree with c; with c.Refine it needs
// Hessians.
func NewVQ(method string, c vq.Config) (*Codebook, error) {
	if got := c.Method(); got != method {
		return nil, fmt.Errorf("%s: %d stages and %d segments make %s", method, c.Stages, c.Segments, got)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Codebook{name: method, q: c, needH: c.Refine > 0}, nil
}

// Name is "kmeans", "vq", "rvq" or "pq".
func (c *Codebook) Name() string { return c.name }

// NeedsHessian is true for k-means with GPTQ and for refined VQ.
func (c *Codebook) NeedsHessian() bool { return c.needH }

// Output is Native.
func (c *Codebook) Output() Output { return Native }

// Compress learns t's codebooks and codes; target must be tensor.Codebook.
// Quantized ggml inputs are widened to F32 first.
func (c *Codebook) Compress(t *tensor.Tensor, target tensor.DType, stats *quant.Stats) (*Compressed, error) {
	if target != tensor.Codebook {
		return nil, fmt.Errorf("%s writes codebooks, not %s", c.name, target)
	}
	if t.Decoder != nil || !t.DType.Float() {
		v, err := widen(t)
		if err != nil {
			return nil, err
		}
		t = tensor.FromFloat32(t.Name, t.Shape, v)
	}
	out, err := c.q.Quantize(t, stats)
	if err != nil {
		return nil, err
	}
	return &Compressed{Tensor: out, How: c.q.Name()}, nil
}

// ggmlQuantize converts t (any stored type) to the ggml or float type dt,
// row blocks in parallel through the kernel pool.
func ggmlQuantize(t *tensor.Tensor, dt tensor.DType, imp []float32) (*tensor.Tensor, error) {
	rows, cols := t.Rows(), t.Cols()
	src, err := widen(t)
	if err != nil {
		return nil, err
	}
	rb, err := dt.RowBytes(cols)
	if err != nil {
		return nil, err
	}
	nt := &tensor.Tensor{Name: t.Name, DType: dt, Shape: append([]int(nil), t.Shape...), Data: make([]byte, rows*rb)}
	var mu sync.Mutex
	var firstErr error
	kernel.Parallel(rows, func(lo, hi int) {
		if err := ggml.Quantize(dt, src[lo*cols:hi*cols], nt.Data[lo*rb:hi*rb], imp); err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return nt, nil
}

// widenRows writes rows [r0, r1) of t as float32 into dst.
func widenRows(t *tensor.Tensor, r0, r1 int, dst []float32) error {
	cols := t.Cols()
	if t.Decoder != nil {
		for r := r0; r < r1; r++ {
			if err := t.Decoder.DecodeRow(r, dst[(r-r0)*cols:(r-r0+1)*cols]); err != nil {
				return fmt.Errorf("tensor %q: row %d: %w", t.Name, r, err)
			}
		}
		return nil
	}
	rb, err := t.DType.RowBytes(cols)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if len(t.Data) != t.Rows()*rb {
		return fmt.Errorf("tensor %q: %s %v needs %d bytes, have %d", t.Name, t.DType, t.Shape, t.Rows()*rb, len(t.Data))
	}
	if err := ggml.Dequantize(t.DType, t.Data[r0*rb:r1*rb], dst[:(r1-r0)*cols]); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return nil
}

// widen is t's values as float32: decoded row by row for a coded tensor,
// dequantized otherwise.
func widen(t *tensor.Tensor) ([]float32, error) {
	if t.Decoder == nil {
		return ggml.DequantizeTensor(t)
	}
	rows, cols := t.Rows(), t.Cols()
	v := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		if err := t.Decoder.DecodeRow(r, v[r*cols:(r+1)*cols]); err != nil {
			return nil, fmt.Errorf("tensor %q: row %d: %w", t.Name, r, err)
		}
	}
	return v, nil
}
