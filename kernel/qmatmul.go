package kernel

import (
	"fmt"
	"sync"

	"github.com/terse-llm/terse/tensor"
)

// The integer decode path: for quantized weights and few activation
// vectors, MatMul quantizes each activation once (qact.go) and dots every
// weight row with it in integer arithmetic (qdot.go, qdot_amd64.s) straight
// from storage, instead of widening rows to float32. From Config.QTileMin
// activations on (by default two: batches), the weights of every type with
// sixteen-row kernels go through the prefill GEMM's tiles instead
// (qgemm16.go, where the level has them): each tile is repacked once and
// dotted with all the tokens, so the weights stream from memory once per
// call and each VPDPBUSD advances sixteen rows. The tiles give ggml's dot
// bit for bit, and so do the row kernels of the exactRowType types, which
// alone stay on the rows for one token (qTileRoute); the other tile types
// take the tiles at every size. Either way the result does not depend on
// the batch size,
// so batched decode gives every sequence the logits it gets alone.

// qRoute reports whether MatMul should use the integer path for n
// activations of weights of type dt under the current settings.
func qRoute(dt tensor.DType, n int) bool { return qRouteCfg(config.Load(), dt, n) }

// qRouteCfg is qRoute under cfg.
func qRouteCfg(cfg *Config, dt tensor.DType, n int) bool {
	if cfg.QDisabled || n > cfg.QMaxBatch {
		return false
	}
	_, ok := qTypeOf(dt)
	return ok
}

// maxTargets is the most weight matrices one MatMulMulti job covers.
const maxTargets = 4

// qTarget is one weight matrix of a job and where its rows go.
type qTarget struct {
	out    []float32
	data   []byte
	rows   int
	rb     int
	start  int // first row in the job's unit numbering
	dot    qdotFn
	rowsFn qrowsFn // nil: no multi-row kernel
	dec4   dec4Fn  // four-token kernel for several activations (qdec4.go), or nil
}

// qJob is one integer-path call over one or more weight matrices that
// share their input, split over the concatenation of their rows.
type qJob struct {
	x     []float32
	n     int
	cols  int
	units int // total rows
	tg    [maxTargets]qTarget
	ntg   int
	tiled bool // rows tile by tile (qgemm.go)
	// Sixteen-row kernels of a tiled job (qgemm16.go), the weight type they
	// take, and the activations interleaved in token groups for them.
	gemm16   gemm16Kernels
	dt16     tensor.DType
	groups16 []gemm16Group
	abuf     []byte
	act      actFormat // the activations' format
	acts     []q8Act   // one per activation vector, grown on demand
	// Backing store for acts, grown on demand and kept.
	qbuf       []int8
	dbuf, sbuf []float32
	bsbuf      []int16
	ebuf       []float32 // spread scales and lane corrections for dec4 kernels
	lbuf       []int32
}

var (
	theQJob   qJob // used under thePool.mu
	qFallback = sync.Pool{New: func() any { return new(qJob) }}
)

// qMatMul is MatMul for qRoute(w.DType, n) weights whose size checks have
// passed; rb is the byte length of one row.
func qMatMul(cfg *Config, out, x []float32, n int, w *tensor.Tensor, rb int) {
	outs := [1][]float32{out}
	ws := [1]*tensor.Tensor{w}
	qMatMulMulti(cfg, outs[:], x, n, ws[:])
}

// qTileRoute reports whether the integer decode path takes n activations
// of dt weights through the sixteen-row kernels (qgemm16.go) under cfg at
// level l: the weights stream once per call for all n tokens, and each
// VPDPBUSD advances sixteen rows at once. Batches smaller than QTileMin
// stay on the rows only for the types whose row kernels give the tiles'
// result bit for bit (exactRowType); the others take the tiles at every
// size, so that batching never changes a sequence's logits.
func qTileRoute(cfg *Config, l level, dt tensor.DType, n int) bool {
	if cfg.QTileMin == 0 || (n < cfg.QTileMin && exactRowType(dt)) || !qGemmType(dt) {
		return false
	}
	k := gemm16For(l, dt)
	return k.decode() && (n >= k.minDecode || !exactRowType(dt))
}

// qMatMulMulti runs the integer path for weights that all pass MatMul's
// checks, route to it and share an activation format. Weights of one type
// that take the sixteen-row kernels run as one tiled job; where only some
// of several weights take them, or their types differ, each runs alone.
func qMatMulMulti(cfg *Config, outs [][]float32, x []float32, n int, ws []*tensor.Tensor) {
	tiled := qTileRoute(cfg, active, ws[0].DType, n)
	for _, w := range ws[1:] {
		if w.DType != ws[0].DType && (tiled || qTileRoute(cfg, active, w.DType, n)) {
			for i := range ws {
				qMatMulMulti(cfg, outs[i:i+1], x, n, ws[i:i+1])
			}
			return
		}
	}
	if tiled {
		qGemmMulti(cfg, outs, x, n, ws)
		return
	}
	p := &thePool
	if !p.mu.TryLock() {
		j := qFallback.Get().(*qJob)
		j.setup(outs, x, n, ws)
		j.run(0, 0, j.units)
		j.reset()
		qFallback.Put(j)
		return
	}
	defer endQMatMul()
	j := &theQJob
	j.setup(outs, x, n, ws)
	t := cfg.Threads
	if n*j.units*j.cols < 4*cfg.SmallWork {
		t = 1
	}
	grain := max(16, (j.units+4*t-1)/(4*t))
	k := max(1, min(t, (j.units+grain-1)/grain))
	if k == 1 {
		j.run(0, 0, j.units)
	} else {
		p.runLocked(k, j.units, grain, j)
	}
}

// endQMatMul drops the integer-path job and releases the pool (deferred,
// so a panic releases it too).
func endQMatMul() {
	theQJob.reset()
	thePool.mu.Unlock()
}

// setup quantizes the n activations and picks the row kernels.
func (j *qJob) setup(outs [][]float32, x []float32, n int, ws []*tensor.Tensor) {
	dec4 := j.setupTargets(outs, x, n, ws, true)
	j.quantActs(0, n)
	if dec4 {
		if cap(j.ebuf) < n*j.cols/4 {
			j.ebuf = make([]float32, n*j.cols/4)
			j.lbuf = make([]int32, n*j.cols/4)
		}
		dec4Acts(j.ebuf, j.lbuf, j.qbuf, j.dbuf, n, j.cols)
	}
}

// setupTargets picks the row kernels (the four-token ones too where
// withDec4, reporting whether any target takes them) and sizes the
// activation buffers, quantizing nothing.
func (j *qJob) setupTargets(outs [][]float32, x []float32, n int, ws []*tensor.Tensor, withDec4 bool) bool {
	qt, _ := qTypeOf(ws[0].DType)
	j.x, j.n, j.cols, j.act = x, n, ws[0].Cols(), qt.act
	dec4 := false
	j.ntg, j.units = len(ws), 0
	for i, w := range ws {
		rb, _ := w.DType.RowBytes(j.cols)
		g, _ := qTypeOf(w.DType)
		j.tg[i] = qTarget{out: outs[i], data: w.Data, rows: w.Rows(), rb: rb, start: j.units,
			dot: qdotFor(active, w.DType, g.generic), rowsFn: qrowsFor(active, w.DType)}
		if withDec4 && n >= 4 && g.act == actQ8_0 && (j.cols/q8Block)%2 == 0 {
			j.tg[i].dec4 = dec4For(active, w.DType)
			dec4 = dec4 || j.tg[i].dec4 != nil
		}
		j.units += w.Rows()
	}
	cols := j.cols
	blk := q8Block
	if qt.act == actQ8_K {
		blk = qkBlock
	}
	nb := cols / blk
	if len(j.acts) < n {
		j.acts = make([]q8Act, n)
	}
	if cap(j.qbuf) < n*cols {
		j.qbuf = make([]int8, n*cols)
	}
	if cap(j.dbuf) < n*nb {
		j.dbuf = make([]float32, n*nb)
		j.sbuf = make([]float32, n*nb)
	}
	if cap(j.bsbuf) < n*cols/16 {
		j.bsbuf = make([]int16, n*cols/16)
	}
	return dec4
}

// quantActs quantizes activations [lo, hi) into their buffers (set up by
// setupTargets); calls for disjoint ranges may run concurrently.
func (j *qJob) quantActs(lo, hi int) {
	cols := j.cols
	blk := q8Block
	if j.act == actQ8_K {
		blk = qkBlock
	}
	nb := cols / blk
	for t := lo; t < hi; t++ {
		a := &j.acts[t]
		a.Q = j.qbuf[t*cols : (t+1)*cols]
		a.D = j.dbuf[t*nb : (t+1)*nb]
		xt := j.x[t*cols : (t+1)*cols]
		if j.act == actQ8_K {
			a.S = nil
			a.BS = j.bsbuf[t*cols/16 : (t+1)*cols/16]
			quantQ8_K(active, a, xt)
		} else {
			a.S = j.sbuf[t*nb : (t+1)*nb]
			a.BS = nil
			quantQ8_0(active, a, xt)
		}
	}
}

func (j *qJob) reset() {
	j.x, j.tiled, j.gemm16 = nil, false, gemm16Kernels{}
	for i := range j.tg {
		j.tg[i] = qTarget{}
	}
}

// run computes units [lo, hi) (rows of the concatenated targets) for every
// activation.
func (j *qJob) run(_, lo, hi int) {
	for i := 0; i < j.ntg; i++ {
		tg := &j.tg[i]
		a, b := max(lo, tg.start)-tg.start, min(hi, tg.start+tg.rows)-tg.start
		if a < b {
			j.runTarget(tg, a, b)
		}
	}
}

// runTarget computes rows [lo, hi) of one target.
func (j *qJob) runTarget(tg *qTarget, lo, hi int) {
	if j.tiled {
		j.runTiled(tg, lo, hi)
		return
	}
	rb, rows, data, out, dot := tg.rb, tg.rows, tg.data, tg.out, tg.dot
	if tg.rowsFn == nil && tg.dec4 == nil {
		for r := lo; r < hi; r++ {
			w := data[r*rb : (r+1)*rb]
			for t := 0; t < j.n; t++ {
				out[t*rows+r] = dot(w, &j.acts[t])
			}
		}
		return
	}
	// Several activations walk the rows a cache-sized tile at a time, all
	// of them against each tile, so the weights stream from memory once
	// per call, not once per activation; a four-token kernel (qdec4.go) takes them
	// four at a time, unpacking each weight block once for all four.
	tile := hi - lo
	if j.n > 1 {
		tile = max(4, qDecodeTileBytes/rb)
	}
	nb := j.cols / q8Block
	for r0 := lo; r0 < hi; r0 += tile {
		r1 := min(r0+tile, hi)
		wt := data[r0*rb : r1*rb]
		t0 := 0
		if tg.dec4 != nil {
			lanes := j.cols / 4
			for ; t0+4 <= j.n; t0 += 4 {
				tg.dec4(out[t0*rows+r0:], r1-r0, rows, wt, rb,
					j.qbuf[t0*j.cols:], j.ebuf[t0*lanes:], j.lbuf[t0*lanes:], j.cols, nb)
			}
		}
		for t := t0; t < j.n; t++ {
			if tg.rowsFn != nil {
				tg.rowsFn(out[t*rows+r0:t*rows+r1], wt, rb, &j.acts[t])
				continue
			}
			for r := r0; r < r1; r++ {
				out[t*rows+r] = dot(data[r*rb:(r+1)*rb], &j.acts[t])
			}
		}
	}
}

// qDecodeTileBytes is the weight bytes the decode path dots with every
// activation before moving on, when it has several: well inside a core's
// L2 cache (1 MiB on the development machine) with room for the
// activations, so that each weight byte is read from memory once.
const qDecodeTileBytes = 128 << 10

// MatMulMulti computes MatMul(outs[i], x, n, ws[i]) for every i: several
// weight matrices with the same input (a layer's q, k and v projections,
// or its gate and up). Where they all take the integer path with one
// activation format, the input is quantized once and the rows of all of
// them are split across the pool as one job; otherwise it is MatMul after
// MatMul. Results are the same as from separate MatMul calls.
func MatMulMulti(x []float32, n int, outs [][]float32, ws []*tensor.Tensor) error {
	if len(outs) != len(ws) {
		return fmt.Errorf("matmul: %d outputs for %d weights", len(outs), len(ws))
	}
	cfg := config.Load()
	if multiGemmOK(cfg, x, n, outs, ws) {
		qGemmMulti(cfg, outs, x, n, ws)
		return nil
	}
	if multiOK(cfg, x, n, outs, ws) {
		qMatMulMulti(cfg, outs, x, n, ws)
		return nil
	}
	for i, w := range ws {
		if err := MatMul(outs[i], x, n, w); err != nil {
			return err
		}
	}
	return nil
}

// multiOK reports whether MatMulMulti can run ws as one integer-path job.
func multiOK(cfg *Config, x []float32, n int, outs [][]float32, ws []*tensor.Tensor) bool {
	if !multiSizesOK(x, n, outs, ws) {
		return false
	}
	var act actFormat
	for i, w := range ws {
		if !qRouteCfg(cfg, w.DType, n) {
			return false
		}
		qt, _ := qTypeOf(w.DType)
		if i == 0 {
			act = qt.act
		} else if qt.act != act {
			return false
		}
	}
	return true
}

// multiSizesOK reports whether ws, two to maxTargets stored (not codebook)
// weights of one width, pass MatMul's size checks for input x and outputs
// outs at n activations.
func multiSizesOK(x []float32, n int, outs [][]float32, ws []*tensor.Tensor) bool {
	if len(ws) < 2 || len(ws) > maxTargets || n < 1 || len(outs) != len(ws) {
		return false
	}
	cols := ws[0].Cols()
	if len(x) < n*cols {
		return false
	}
	for i, w := range ws {
		if w.Decoder != nil || w.Cols() != cols {
			return false
		}
		rb, err := w.DType.RowBytes(cols)
		if err != nil || len(w.Data) < w.Rows()*rb || len(outs[i]) < n*w.Rows() || w.Rows() == 0 {
			return false
		}
	}
	return true
}
