package calib

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/tensor"
)

// Collector is a model.Observer that accumulates, for every weight matrix
// it sees, the sum of squared inputs per input column (float64) and the
// number of input rows, as llama-imatrix does; and, for the tensors Hessians
// selects, the full Hessian XᵀX of the inputs (float64, cols×cols).
//
// Matrices that multiply the very same input (attn_q, attn_k and attn_v;
// ffn_gate and ffn_up) share one accumulation, so the Hessian work and
// memory are paid once per distinct input. Sharing is learned on first
// sight: a tensor joins the accumulation of the call just before it when
// that call had the same input pointer, row count and width; afterwards
// every call of a joined tensor must directly follow a call of its group
// with that same input, or Err reports the broken assumption. This matches
// model.State.Forward, which observes q, k and v (then gate and up)
// back to back on one buffer.
//
// The zero value collects Σx² for every matrix and no Hessians. A Collector
// is safe for concurrent use, though the forward pass calls it from one
// goroutine.
type Collector struct {
	// Include selects the tensors to collect (nil: all). llama-imatrix
	// collects the "blk." tensors and, with --process-output, output.weight;
	// BlockTensors mirrors its default.
	Include func(name string) bool
	// Hessians selects the tensors whose XᵀX to accumulate (nil: none).
	// Each costs cols² float64 (18.9 MB for a 1536-wide input).
	Hessians func(name string) bool
	// MinRows skips products with fewer input rows; llama-imatrix skips
	// those under 16 tokens. 0 collects everything.
	MinRows int

	mu      sync.Mutex
	members map[string]*member
	order   []string
	prev    *group   // group of the last accepted call
	prevPtr *float32 // its input
	prevN   int
	xt      []float64 // transposed input scratch for the Hessian update
	xt32    []float32 // the same, for the float32 path
	h32     []float32 // one call's XᵀX, float32
	err     error
}

// BlockTensors is llama-imatrix's default selection: the tensors of the
// transformer blocks, not the output projection.
func BlockTensors(name string) bool { return strings.HasPrefix(name, "blk.") }

// group is one distinct input stream and its statistics.
type group struct {
	leader string
	cols   int
	sumSq  []float64
	rows   int64
	hess   []float64 // upper triangle of XᵀX; nil when nobody asked
	calls  int64     // observations of the leader
	// mirrored is calls when SharedStats last filled hess's lower
	// triangle (0: never).
	mirrored int64
}

type member struct {
	g     *group
	calls int64 // the group's observations this member has accounted for
	rows  int64
}

var _ model.Observer = (*Collector)(nil)

// Observe accumulates the n input rows x (n × cols floats) of the
// projection named name. It implements model.Observer.
func (c *Collector) Observe(name string, x []float32, n int) {
	if n <= 0 || n < c.MinRows || (c.Include != nil && !c.Include(name)) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(x) == 0 || len(x)%n != 0 {
		c.fail(fmt.Errorf("calib: %s: %d input floats do not make %d rows", name, len(x), n))
		return
	}
	cols := len(x) / n
	if c.members == nil {
		c.members = map[string]*member{}
	}
	ptr := &x[0]
	m := c.members[name]
	switch {
	case m == nil && c.prev != nil && c.prevPtr == ptr && c.prevN == n && c.prev.cols == cols:
		// First sight, same input as the call just before: share.
		m = &member{g: c.prev, calls: c.prev.calls, rows: int64(n)}
		c.members[name] = m
		c.order = append(c.order, name)
		if c.Hessians != nil && c.Hessians(name) && m.g.hess == nil {
			if m.g.calls != 1 {
				c.fail(fmt.Errorf("calib: %s shares its input with %s, which has been collecting without a Hessian", name, m.g.leader))
				return
			}
			m.g.hess = make([]float64, cols*cols)
			c.addHessian(m.g, x, n)
		}
		return
	case m == nil:
		g := &group{leader: name, cols: cols, sumSq: make([]float64, cols)}
		if c.Hessians != nil && c.Hessians(name) {
			g.hess = make([]float64, cols*cols)
		}
		m = &member{g: g}
		c.members[name] = m
		c.order = append(c.order, name)
	case m.g.cols != cols:
		c.fail(fmt.Errorf("calib: %s: width changed from %d to %d", name, m.g.cols, cols))
		return
	}
	g := m.g
	if g.leader != name {
		// A follower: its input must be the one its leader just saw.
		if c.prev != g || c.prevPtr != ptr || c.prevN != n || m.calls != g.calls-1 {
			c.fail(fmt.Errorf("calib: %s was first seen sharing the input of %s but now sees a different one; its statistics are not its own", name, g.leader))
			return
		}
		m.calls = g.calls
		m.rows += int64(n)
		return
	}
	for t := 0; t < n; t++ {
		row := x[t*cols : (t+1)*cols]
		s := g.sumSq[:len(row)]
		for j, v := range row {
			f := float64(v)
			s[j] += f * f
		}
	}
	if g.hess != nil {
		c.addHessian(g, x, n)
	}
	g.rows += int64(n)
	g.calls++
	m.calls = g.calls
	m.rows += int64(n)
	c.prev, c.prevPtr, c.prevN = g, ptr, n
}

func (c *Collector) addHessian(g *group, x []float32, n int) {
	cols := g.cols
	if n*cols*cols >= fastHessianWork {
		c.addHessianF32(g, x, n)
		return
	}
	if cap(c.xt) < n*cols {
		c.xt = make([]float64, n*cols)
	}
	xt := c.xt[:n*cols]
	for t := 0; t < n; t++ {
		for j, v := range x[t*cols : (t+1)*cols] {
			xt[j*n+t] = float64(v)
		}
	}
	addXtX(g.hess, cols, xt, n)
}

// fastHessianWork is the multiply-add count from which one call's XᵀX is
// formed with the engine's float32 matrix kernels (SIMD, all cores) and only
// then added into the float64 sum: each entry then carries a float32
// rounding of about 1e-7·√n relative, far below GPTQ's damping.
const fastHessianWork = 1 << 22

func (c *Collector) addHessianF32(g *group, x []float32, n int) {
	cols := g.cols
	if cap(c.xt32) < n*cols {
		c.xt32 = make([]float32, n*cols)
	}
	xt := c.xt32[:n*cols]
	for t := 0; t < n; t++ {
		for j, v := range x[t*cols : (t+1)*cols] {
			xt[j*n+t] = v
		}
	}
	band := min(cols, hessianBand)
	if cap(c.h32) < band*cols {
		c.h32 = make([]float32, band*cols)
	}
	// Only the upper triangle is formed, a band of rows at a time: rows
	// [i0, i1) of XᵀX, columns from i0 on, are the vectors i0..i1−1 of Xᵀ
	// times Xᵀ's rows from i0 on as a weight matrix. Each entry is the same
	// float32 dot product (same operands, same order) as in the whole
	// product, so the sums are bit for bit those of one cols×cols product,
	// at a little over half the work.
	for i0 := 0; i0 < cols; i0 += band {
		i1 := min(i0+band, cols)
		w := &tensor.Tensor{Name: "XᵀX", DType: tensor.F32, Shape: []int{cols - i0, n},
			Data: unsafe.Slice((*byte)(unsafe.Pointer(&xt[i0*n])), 4*(cols-i0)*n)}
		wide := cols - i0
		h32 := c.h32[:(i1-i0)*wide]
		if err := kernel.MatMul(h32, xt[i0*n:i1*n], i1-i0, w); err != nil {
			c.fail(err)
			return
		}
		for i := i0; i < i1; i++ {
			row, src := g.hess[i*cols+i:(i+1)*cols], h32[(i-i0)*wide+(i-i0):(i-i0+1)*wide]
			src = src[:len(row)]
			for j, v := range src {
				row[j] += float64(v)
			}
		}
	}
}

// hessianBand is the number of Hessian rows addHessianF32 forms per
// product: small enough that the part of the lower triangle it computes
// needlessly (half a band per band) stays a few percent of an 8192-wide
// input's work, and its float32 scratch (band × cols) small.
const hessianBand = 256

func (c *Collector) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// Err reports the first inconsistency met while collecting (nil if none).
func (c *Collector) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Names lists the collected tensors in the order first seen.
func (c *Collector) Names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.order)
}

// SharedWith names the tensor whose accumulation name shares (itself when
// it has its own), or "" when name was not collected.
func (c *Collector) SharedWith(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[name]; m != nil {
		return m.g.leader
	}
	return ""
}

// Rows is the number of input rows (tokens) name has seen.
func (c *Collector) Rows(name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[name]; m != nil {
		return m.rows
	}
	return 0
}

// SumSquares returns Σx² per input column of name (nil when not collected).
func (c *Collector) SumSquares(name string) []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[name]; m != nil {
		return slices.Clone(m.g.sumSq)
	}
	return nil
}

// Importance returns name's mean squared activation per input column,
// E[x_j²] (what llama-quantize derives from an imatrix), or nil.
func (c *Collector) Importance(name string) []float32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[name]
	if m == nil || m.g.rows == 0 {
		return nil
	}
	out := make([]float32, m.g.cols)
	for j, s := range m.g.sumSq {
		out[j] = float32(s / float64(m.g.rows))
	}
	return out
}

// Hessian returns name's XᵀX as a full symmetric cols×cols row-major
// matrix and the number of rows summed into it; nil when none was
// collected for it.
func (c *Collector) Hessian(name string) ([]float64, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[name]
	if m == nil || m.g.hess == nil {
		return nil, 0
	}
	n := m.g.cols
	h := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			v := m.g.hess[i*n+j]
			h[i*n+j], h[j*n+i] = v, v
		}
	}
	return h, int(m.g.rows)
}

// SharedStats is Stats without the copy of the Hessian: its Hessian is the
// collector's own accumulation, made symmetric in place (the lower triangle
// filled from the upper), and is the same slice for every tensor that
// shares the input. It is valid until the next Observe or Release, and
// must not be modified. Layer-by-layer compression uses it so that a wide
// input's Hessian (8·cols² bytes, 512 MiB at 8192 columns) is held once.
func (c *Collector) SharedStats(name string) *quant.Stats {
	imp := c.Importance(name)
	if imp == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.members[name].g
	if g.hess == nil {
		return &quant.Stats{Importance: imp}
	}
	if g.mirrored != g.calls {
		n := g.cols
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				g.hess[j*n+i] = g.hess[i*n+j]
			}
		}
		g.mirrored = g.calls
	}
	return &quant.Stats{Importance: imp, Hessian: g.hess, Samples: int(g.rows)}
}

// Stats gathers what was collected for name for a quantizer (nil when
// nothing was).
func (c *Collector) Stats(name string) *quant.Stats {
	imp := c.Importance(name)
	if imp == nil {
		return nil
	}
	h, n := c.Hessian(name)
	return &quant.Stats{Importance: imp, Hessian: h, Samples: n}
}

// IMatrix exports the Σx² statistics as llama.cpp's legacy imatrix, the
// way llama-imatrix writes it: entries sorted by name, ncall = ⌈rows /
// chunkSize⌉, values = Σx²/rows · ncall in float32, last chunk = the most
// rows any tensor saw / chunkSize. chunkSize is the context the chunks
// were run with (llama-imatrix's n_ctx).
func (c *Collector) IMatrix(chunkSize int, dataset string) (*IMatrix, error) {
	if chunkSize <= 0 {
		return nil, fmt.Errorf("calib: chunk size %d must be positive", chunkSize)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	names := slices.Sorted(func(yield func(string) bool) {
		for n, m := range c.members {
			if m.rows > 0 && !yield(n) {
				return
			}
		}
	})
	if len(names) == 0 {
		return nil, errors.New("calib: nothing collected")
	}
	out := &IMatrix{Dataset: dataset}
	var most int64
	for _, name := range names {
		m := c.members[name]
		ncall := (m.rows + int64(chunkSize) - 1) / int64(chunkSize)
		if ncall > math.MaxInt32 {
			return nil, fmt.Errorf("calib: %s: %d chunks overflow the imatrix format", name, ncall)
		}
		e := Entry{Name: name, NCall: int32(ncall), Values: make([]float32, m.g.cols)}
		for j, s := range m.g.sumSq {
			e.Values[j] = float32(s) / float32(m.rows) * float32(ncall)
		}
		out.Entries = append(out.Entries, e)
		most = max(most, m.rows)
	}
	out.LastChunk = int32(min(most/int64(chunkSize), math.MaxInt32))
	return out, nil
}

// narrow restricts the collection to the tensors sel accepts as well.
func (c *Collector) narrow(sel func(string) bool) {
	if inc := c.Include; inc != nil {
		c.Include = func(name string) bool { return sel(name) && inc(name) }
		return
	}
	c.Include = sel
}

// HessianBytes is the memory held by the Hessian accumulations (8 bytes
// per entry of each cols×cols sum, one per distinct input), the quantity
// layer-by-layer calibration bounds.
func (c *Collector) HessianBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	seen := map[*group]bool{}
	for _, m := range c.members {
		if !seen[m.g] && m.g.hess != nil {
			seen[m.g] = true
			n += 8 * int64(len(m.g.hess))
		}
	}
	return n
}

// Release frees everything collected (statistics and scratch); the
// collector then reports nothing, as if it had seen nothing, except Err.
func (c *Collector) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members, c.order, c.prev, c.prevPtr, c.prevN = nil, nil, nil, nil, 0
	c.xt, c.xt32, c.h32 = nil, nil, nil
}
