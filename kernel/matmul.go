package kernel

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// littleEndian reports whether float32 values may be read in place from
// little-endian tensor data.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// MatMul computes out[t*rows+r] = dot(x[t*cols:(t+1)*cols], row r of w) for
// t in [0, n): x holds n activation vectors of length w.Cols(), out n vectors
// of length w.Rows(). w stays in its stored type: F32, F16, BF16 or any
// type ggml.Dequantize handles. Accumulation is in float32.
//
// For n == 1 each row is dotted with x straight from storage (F32 in place,
// F16/BF16 widened on the fly) or after dequantizing it into a per-worker
// buffer. For n > 1 tiles of rows are widened once into a per-worker buffer
// and multiplied against all n activations by a register-blocked
// micro-kernel (4 rows × 4 tokens with AVX-512, 4 × 3 with AVX2); F16 and
// BF16 weights at AVX-512 skip the buffer: fused kernels widen them in
// registers (hgemm.go). Work is
// split over row tiles (and over token panels when rows are few) across the
// persistent pool; in steady state a call allocates nothing.
func MatMul(out, x []float32, n int, w *tensor.Tensor) error {
	rows, cols := w.Rows(), w.Cols()
	if n < 0 || len(x) < n*cols || len(out) < n*rows {
		return fmt.Errorf("matmul %q: %d×%d weight with %d inputs: buffers too small", w.Name, rows, cols, n)
	}
	if n == 0 || rows == 0 {
		return nil
	}
	rb, err := w.DType.RowBytes(cols)
	if err != nil {
		return fmt.Errorf("matmul %q: %w", w.Name, err)
	}
	if len(w.Data) < rows*rb {
		return fmt.Errorf("matmul %q: %s %v needs %d bytes, have %d", w.Name, w.DType, w.Shape, rows*rb, len(w.Data))
	}
	if w.Decoder == nil && !ggml.Supported(w.DType) {
		return fmt.Errorf("matmul %q: %s weights are not supported", w.Name, w.DType)
	}
	cfg := config.Load() // one snapshot of the settings for the whole call
	// Quantized weights at decode batch sizes: integer dot products against
	// quantized activations (qmatmul.go).
	if w.Decoder == nil && qRouteCfg(cfg, w.DType, n) {
		qMatMul(cfg, out, x, n, w, rb)
		return nil
	}
	// Q4_0 and Q8_0 prefill batches: the tiled integer GEMM (qgemm.go).
	if w.Decoder == nil && qGemmRoute(cfg, active, w.DType, n) {
		qGemm(cfg, out, x, n, w)
		return nil
	}

	p := &thePool
	if !p.mu.TryLock() {
		// The pool is busy (another goroutine, or a call from inside a
		// job): run on this goroutine with a job of our own.
		j := fallbackJobs.Get().(*mmJob)
		j.setup(cfg, out, x, n, w, rb, 1)
		j.runAll()
		err := j.err
		j.reset()
		fallbackJobs.Put(j)
		return err
	}
	defer p.endMatMul()
	j := &p.mm
	j.p = p
	t := cfg.Threads
	if n*rows*cols < cfg.SmallWork {
		t = 1
	}
	units, grain := j.setup(cfg, out, x, n, w, rb, t)
	k := max(1, min(t, (units+grain-1)/grain))
	p.ensure(k)
	clear(p.errs[:k])
	if k == 1 {
		j.run(0, 0, units)
	} else {
		p.runLocked(k, units, grain, j)
	}
	for _, e := range p.errs[:k] {
		if e != nil && err == nil {
			err = e
		}
	}
	return err
}

// endMatMul drops MatMul's job and releases the pool (deferred, so a panic
// releases it too).
func (p *pool) endMatMul() {
	clear(p.errs)
	p.mm.reset()
	p.mu.Unlock()
}

var fallbackJobs = sync.Pool{New: func() any { return new(mmJob) }}

// mmJob is one MatMul call, split into units: rows (n == 1) or
// (row tile, token panel) pairs (n > 1).
type mmJob struct {
	p       *pool     // nil: a fallback job using own and err
	own     []float32 // fallback scratch
	err     error     // fallback error
	lvl     level
	out, x  []float32
	n       int
	rows    int
	cols    int
	rb      int
	w       *tensor.Tensor
	wf      []float32 // w.Data read in place as float32, when possible
	tr, kb  int       // tileRows, kBlock
	panels  int       // token panels per row tile
	panelSz int       // tokens per panel
	half    bool      // fused F16/BF16 kernels (hgemm.go)
	xs      []float32 // activations as the fused kernels read them
	xstride int       // floats from one token to the next in xs
	xh      []float32 // scratch of the BF16 permuted activations (kept)
}

// setup fills in the job for t threads under cfg and returns its unit
// count and the chunk of units a worker claims at a time.
func (j *mmJob) setup(cfg *Config, out, x []float32, n int, w *tensor.Tensor, rb, t int) (units, grain int) {
	j.lvl = active
	j.out, j.x, j.n, j.w, j.rb = out, x, n, w, rb
	j.rows, j.cols = w.Rows(), w.Cols()
	j.wf = nil
	if w.DType == tensor.F32 && littleEndian && len(w.Data) >= 4 &&
		uintptr(unsafe.Pointer(&w.Data[0]))%4 == 0 {
		j.wf = unsafe.Slice((*float32)(unsafe.Pointer(&w.Data[0])), j.rows*j.cols)
	}
	j.tr, j.kb = max(4, cfg.TileRows&^3), max(16, cfg.KBlock&^15)
	j.half = n > 1 && halfRoute && w.Decoder == nil && halfFused(j.lvl, w.DType)
	if j.half {
		j.kb = max(halfBlock, cfg.KBlock&^(halfBlock-1))
		j.xs, j.xstride = x, j.cols
		if w.DType == tensor.BF16 {
			j.xstride = (j.cols + halfBlock - 1) &^ (halfBlock - 1)
			if cap(j.xh) < n*j.xstride {
				j.xh = make([]float32, n*j.xstride)
			}
			j.xs = j.xh[:n*j.xstride]
			permuteBF16(j.xs, x, n, j.cols, j.xstride)
		}
	}
	if n == 1 {
		grain = max(16, (j.rows+4*t-1)/(4*t))
		return j.rows, grain
	}
	tiles := (j.rows + j.tr - 1) / j.tr
	nr := microNR(j.lvl)
	j.panels = 1
	if tiles < 2*t {
		j.panels = min((2*t+tiles-1)/tiles, (n+nr-1)/nr)
	}
	// Panels are a multiple of 12 tokens so that micro-kernels of 3 or 4
	// tokens waste nothing inside them.
	j.panelSz = ((n+j.panels-1)/j.panels + 11) / 12 * 12
	j.panels = (n + j.panelSz - 1) / j.panelSz
	return tiles * j.panels, 1
}

// reset drops the references the job holds.
func (j *mmJob) reset() {
	j.out, j.x, j.w, j.wf, j.err, j.xs = nil, nil, nil, nil, nil, nil
}

// runAll runs every unit on the calling goroutine (fallback jobs).
func (j *mmJob) runAll() {
	if j.n == 1 {
		j.run(0, 0, j.rows)
		return
	}
	j.run(0, 0, (j.rows+j.tr-1)/j.tr*j.panels)
}

func (j *mmJob) buf(worker, size int) []float32 {
	if j.p != nil {
		return j.p.buf(worker, size)
	}
	if cap(j.own) < size {
		j.own = make([]float32, size)
	}
	return j.own[:size]
}

func (j *mmJob) fail(worker int, err error) {
	err = fmt.Errorf("matmul %q: %w", j.w.Name, err)
	if j.p != nil {
		j.p.errs[worker] = err
	} else {
		j.err = err
	}
}

func (j *mmJob) run(worker, lo, hi int) {
	if j.n == 1 {
		j.decode(worker, lo, hi)
		return
	}
	for u := lo; u < hi; u++ {
		tile, panel := u/j.panels, u%j.panels
		r0 := tile * j.tr
		t0 := panel * j.panelSz
		if !j.tile(worker, r0, min(r0+j.tr, j.rows), t0, min(t0+j.panelSz, j.n)) {
			return
		}
	}
}

// widen writes row r of w as float32 into dst (len cols).
func (j *mmJob) widen(dst []float32, r int) error {
	if j.w.Decoder != nil { // codebook weights (tensor.RowDecoder)
		return j.w.Decoder.DecodeRow(r, dst)
	}
	src := j.w.Data[r*j.rb : (r+1)*j.rb]
	switch j.w.DType {
	case tensor.F16:
		f16ToF32(j.lvl, dst, src)
	case tensor.BF16:
		bf16ToF32(j.lvl, dst, src)
	default:
		if !dequantRow(j.lvl, j.w.DType, dst, src) {
			return ggml.Dequantize(j.w.DType, src, dst)
		}
	}
	return nil
}

// decode computes out[r] = row r · x for r in [r0, r1) (n == 1).
func (j *mmJob) decode(worker, r0, r1 int) {
	cols, rb, lvl := j.cols, j.rb, j.lvl
	x, out, data := j.x[:cols], j.out, j.w.Data
	switch {
	case j.wf != nil:
		for r := r0; r < r1; r++ {
			out[r] = dot(lvl, j.wf[r*cols:(r+1)*cols], x)
		}
	case j.w.DType == tensor.F16:
		for r := r0; r < r1; r++ {
			out[r] = dotF16(lvl, data[r*rb:(r+1)*rb], x)
		}
	case j.w.DType == tensor.BF16:
		for r := r0; r < r1; r++ {
			out[r] = dotBF16(lvl, data[r*rb:(r+1)*rb], x)
		}
	default:
		buf := j.buf(worker, cols)
		for r := r0; r < r1; r++ {
			if err := j.widen(buf, r); err != nil {
				j.fail(worker, err)
				return
			}
			out[r] = dot(lvl, buf, x)
		}
	}
}

// tile computes out[t*rows+r] for rows [r0, r1) and tokens [t0, t1).
func (j *mmJob) tile(worker, r0, r1, t0, t1 int) bool {
	if j.half {
		j.tileHalf(r0, r1, t0, t1)
		return true
	}
	cols, rows := j.cols, j.rows
	var wt []float32
	if j.wf != nil {
		wt = j.wf[r0*cols : r1*cols]
	} else {
		wt = j.buf(worker, (r1-r0)*cols)
		for r := r0; r < r1; r++ {
			if err := j.widen(wt[(r-r0)*cols:(r-r0+1)*cols], r); err != nil {
				j.fail(worker, err)
				return false
			}
		}
	}
	nr := microNR(j.lvl)
	var wp, xp [4]*float32
	var acc [16]float32
	x, out := j.x, j.out
	for k0 := 0; k0 < cols; k0 += j.kb {
		k := min(j.kb, cols-k0)
		for t := t0; t < t1; t += nr {
			nt := min(nr, t1-t)
			// Missing tokens/rows at the edges repeat the last one; their
			// results are dropped.
			for i := range xp {
				xp[i] = &x[(t+min(i, nt-1))*cols+k0]
			}
			for r := r0; r < r1; r += 4 {
				nw := min(4, r1-r)
				for i := range wp {
					wp[i] = &wt[(r-r0+min(i, nw-1))*cols+k0]
				}
				micro(j.lvl, &wp, &xp, k, &acc)
				for i := 0; i < nw; i++ {
					for c := 0; c < nt; c++ {
						o := &out[(t+c)*rows+r+i]
						if k0 == 0 {
							*o = acc[4*i+c]
						} else {
							*o += acc[4*i+c]
						}
					}
				}
			}
		}
	}
	return true
}

// tileHalf is tile for the fused half kernels, reading the weights in
// place.
func (j *mmJob) tileHalf(r0, r1, t0, t1 int) {
	cols, rows, rb, dt := j.cols, j.rows, j.rb, j.w.DType
	data, out, xs, xst := j.w.Data, j.out, j.xs, j.xstride
	var wp [4]*byte
	var xp [4]*float32
	var acc [16]float32
	nr, x1 := halfNR(j.lvl), halfX1(j.lvl)
	for k0 := 0; k0 < cols; k0 += j.kb {
		k := min(j.kb, cols-k0)
		for t := t0; t < t1; t += nr {
			nt := min(nr, t1-t)
			for i := range xp {
				xp[i] = &xs[(t+min(i, nt-1))*xst+k0]
			}
			for r := r0; r < r1; r += 4 {
				nw := min(4, r1-r)
				for i := range wp {
					wp[i] = &data[(r+min(i, nw-1))*rb+2*k0]
				}
				halfMicro(j.lvl, dt, nt, &wp, &xp, k, &acc)
				for i := 0; i < nw; i++ {
					for c := 0; c < nt; c++ {
						o := &out[(t+c)*rows+r+i]
						v := acc[4*i+c]
						if nt == 1 && x1 {
							v = acc[i]
						}
						if k0 == 0 {
							*o = v
						} else {
							*o += v
						}
					}
				}
			}
		}
	}
}
