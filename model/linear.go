package model

import (
	"fmt"
	"sync"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/tensor"
)

// Linear is one projection of the forward pass: a Rows×Cols matrix that
// multiplies itself by activations. The forward pass sees weights only
// through it, so a projection may be stored densely (any float or ggml
// block type, or codebook-decoded), sparsely, or as any of them plus a
// low-rank adapter and a bias.
type Linear interface {
	// Name is the canonical tensor name ("blk.0.attn_q.weight"); observers
	// and error messages use it.
	Name() string
	// Rows is the output width, Cols the input width.
	Rows() int
	Cols() int
	// MatMul sets out[t*Rows()+r] = Σ_c W[r][c]·x[t*Cols()+c] (+ bias) for
	// the n activation rows of x. It may run on the kernel pool and must
	// be safe for concurrent calls.
	MatMul(out, x []float32, n int) error
	// Bytes is the stored size of the projection's parameters.
	Bytes() int64
}

// Dense is a projection held as one tensor in its stored type (F32, F16,
// BF16, any ggml block type, or a tensor with a codebook Decoder),
// multiplied by kernel.MatMul.
type Dense struct {
	W *tensor.Tensor
}

// NewDense wraps t, which must be a 2-D matrix [rows, cols].
func NewDense(t *tensor.Tensor) *Dense { return &Dense{W: t} }

// Name implements Linear.
func (d *Dense) Name() string { return d.W.Name }

// Rows implements Linear.
func (d *Dense) Rows() int { return d.W.Rows() }

// Cols implements Linear.
func (d *Dense) Cols() int { return d.W.Cols() }

// MatMul implements Linear.
func (d *Dense) MatMul(out, x []float32, n int) error { return kernel.MatMul(out, x, n, d.W) }

// Bytes implements Linear.
func (d *Dense) Bytes() int64 { return int64(len(d.W.Data)) }

// Biased is a projection plus a bias vector of Rows() floats, added to every
// output row after the product (Qwen2's q, k and v).
type Biased struct {
	Base Linear
	Bias []float32
}

// NewBiased adds bias (len base.Rows()) to base.
func NewBiased(base Linear, bias []float32) (*Biased, error) {
	if len(bias) != base.Rows() {
		return nil, fmt.Errorf("linear %q: bias of %d for %d rows", base.Name(), len(bias), base.Rows())
	}
	return &Biased{Base: base, Bias: bias}, nil
}

// Name implements Linear.
func (b *Biased) Name() string { return b.Base.Name() }

// Rows implements Linear.
func (b *Biased) Rows() int { return b.Base.Rows() }

// Cols implements Linear.
func (b *Biased) Cols() int { return b.Base.Cols() }

// MatMul implements Linear.
func (b *Biased) MatMul(out, x []float32, n int) error {
	if err := b.Base.MatMul(out, x, n); err != nil {
		return err
	}
	addRows(out, b.Bias, n)
	return nil
}

// Bytes implements Linear.
func (b *Biased) Bytes() int64 { return b.Base.Bytes() + 4*int64(len(b.Bias)) }

// addRows adds bias to each of the n rows of out.
func addRows(out, bias []float32, n int) {
	rows := len(bias)
	for t := 0; t < n; t++ {
		add(out[t*rows:(t+1)*rows], bias)
	}
}

// LowRank is a projection plus a low-rank correction: y = Base(x) + B·(A·x)
// with A rank×Cols and B Rows×rank, row-major float32 (a LoRA or EoRA
// adapter, or the residual of an SVD compression).
type LowRank struct {
	Base Linear
	Rank int
	A, B []float32

	mu  sync.Mutex
	tmp []float32 // n×Rank, grown on demand
}

// NewLowRank checks the adapter's shapes against base.
func NewLowRank(base Linear, rank int, a, b []float32) (*LowRank, error) {
	if rank <= 0 || len(a) != rank*base.Cols() || len(b) != base.Rows()*rank {
		return nil, fmt.Errorf("linear %q: adapter of rank %d needs A %d×%d and B %d×%d, have %d and %d floats",
			base.Name(), rank, rank, base.Cols(), base.Rows(), rank, len(a), len(b))
	}
	return &LowRank{Base: base, Rank: rank, A: a, B: b}, nil
}

// Name implements Linear.
func (l *LowRank) Name() string { return l.Base.Name() }

// Rows implements Linear.
func (l *LowRank) Rows() int { return l.Base.Rows() }

// Cols implements Linear.
func (l *LowRank) Cols() int { return l.Base.Cols() }

// MatMul implements Linear.
func (l *LowRank) MatMul(out, x []float32, n int) error {
	rows, cols, r := l.Rows(), l.Cols(), l.Rank
	if n < 0 || len(x) < n*cols || len(out) < n*rows {
		return fmt.Errorf("linear %q: %d inputs: buffers too small", l.Name(), n)
	}
	if err := l.Base.MatMul(out, x, n); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if cap(l.tmp) < n*r {
		l.tmp = make([]float32, n*r)
	}
	tmp := l.tmp[:n*r]
	for t := 0; t < n; t++ {
		xt := x[t*cols : (t+1)*cols]
		for i := 0; i < r; i++ {
			tmp[t*r+i] = kernel.Dot(l.A[i*cols:(i+1)*cols], xt)
		}
		ot, tt := out[t*rows:(t+1)*rows], tmp[t*r:(t+1)*r]
		for j := range ot {
			ot[j] += kernel.Dot(l.B[j*r:(j+1)*r], tt)
		}
	}
	return nil
}

// Bytes implements Linear.
func (l *LowRank) Bytes() int64 { return l.Base.Bytes() + 4*int64(len(l.A)+len(l.B)) }

// Sparse is a float32 matrix in compressed sparse row form: row r's nonzero
// values are Val[RowPtr[r]:RowPtr[r+1]], in the columns ColIdx of the same
// range (pruned weights).
type Sparse struct {
	name       string
	rows, cols int
	RowPtr     []int32
	ColIdx     []int32
	Val        []float32
}

// NewSparse keeps the nonzero entries of the row-major rows×cols matrix w.
func NewSparse(name string, rows, cols int, w []float32) (*Sparse, error) {
	if rows <= 0 || cols <= 0 || len(w) != rows*cols {
		return nil, fmt.Errorf("sparse %q: %d floats for %d×%d", name, len(w), rows, cols)
	}
	s := &Sparse{name: name, rows: rows, cols: cols, RowPtr: make([]int32, rows+1)}
	for r := 0; r < rows; r++ {
		for c, v := range w[r*cols : (r+1)*cols] {
			if v != 0 {
				s.ColIdx = append(s.ColIdx, int32(c))
				s.Val = append(s.Val, v)
			}
		}
		s.RowPtr[r+1] = int32(len(s.Val))
	}
	return s, nil
}

// Name implements Linear.
func (s *Sparse) Name() string { return s.name }

// Rows implements Linear.
func (s *Sparse) Rows() int { return s.rows }

// Cols implements Linear.
func (s *Sparse) Cols() int { return s.cols }

// MatMul implements Linear.
func (s *Sparse) MatMul(out, x []float32, n int) error {
	if n < 0 || len(x) < n*s.cols || len(out) < n*s.rows {
		return fmt.Errorf("sparse %q: %d inputs: buffers too small", s.name, n)
	}
	for t := 0; t < n; t++ {
		xt, ot := x[t*s.cols:(t+1)*s.cols], out[t*s.rows:(t+1)*s.rows]
		for r := range ot {
			var acc float32
			for i := s.RowPtr[r]; i < s.RowPtr[r+1]; i++ {
				acc += s.Val[i] * xt[s.ColIdx[i]]
			}
			ot[r] = acc
		}
	}
	return nil
}

// Bytes implements Linear.
func (s *Sparse) Bytes() int64 {
	return 4*int64(len(s.RowPtr)) + 8*int64(len(s.Val))
}

// DenseTensor returns the tensor of a dense projection, looking through a
// bias (whose vector BiasOf returns); ok is false for any other Linear.
func DenseTensor(l Linear) (t *tensor.Tensor, ok bool) {
	if b, isBiased := l.(*Biased); isBiased {
		l = b.Base
	}
	d, isDense := l.(*Dense)
	if !isDense {
		return nil, false
	}
	return d.W, true
}

// BiasOf returns the bias of a *Biased projection, nil otherwise.
func BiasOf(l Linear) []float32 {
	if b, ok := l.(*Biased); ok {
		return b.Bias
	}
	return nil
}
