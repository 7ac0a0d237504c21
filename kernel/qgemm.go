package kernel

import "github.com/terse-llm/terse/tensor"

// The integer prefill path: for qGemmType weights and batches too
// large for the decode path (n > Config.QMaxBatch, n >= Config.QGemmMin),
// on CPUs with the sixteen-row micro-kernels (qgemm16.go: AVX512_VNNI or
// AVX2), qGemm quantizes the n activations once to Q8_0 (qJob.setup, ggml's
// rounding) and walks the weights in tiles of qGemmTile rows: each tile is
// repacked once and dotted with every activation, so weights are read from
// memory once per call. Elsewhere (tests force lower levels) each tile goes
// through the decode path's row kernels. MatMul routes only where the
// sixteen-row kernels exist (qGemmRoute). Row tiles are split over the
// kernel pool; the activation buffers are the decode job's, grown on
// demand and kept, so steady state allocates nothing but pooled scratch.

// qGemmTile is how many weight rows one tile holds: the sixteen lanes of
// the micro-kernels' accumulators.
const qGemmTile = 16

// qGemmRoute reports whether MatMul sends n activations of dt weights down
// the tiled integer GEMM under cfg at level l.
func qGemmRoute(cfg *Config, l level, dt tensor.DType, n int) bool {
	if cfg.QDisabled || cfg.QGemmMin == 0 || n <= cfg.QMaxBatch || n < cfg.QGemmMin || !qGemmType(dt) {
		return false
	}
	return gemm16For(l, dt).ok()
}

// qGemmType reports whether qGemm takes dt weights.
func qGemmType(dt tensor.DType) bool {
	switch dt {
	case tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0, tensor.IQ4_NL, tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.IQ4_XS:
		return true
	}
	return false
}

// qGemm is MatMul for qGemmType weights whose size checks have passed.
func qGemm(cfg *Config, out, x []float32, n int, w *tensor.Tensor) {
	outs := [1][]float32{out}
	ws := [1]*tensor.Tensor{w}
	qGemmMulti(cfg, outs[:], x, n, ws[:])
}

// qGemmMulti is qGemm for several weights of one type and width with the
// same input (multiGemmOK): the activations are quantized and interleaved
// once for all of them, and their rows are split across the pool as one
// job.
func qGemmMulti(cfg *Config, outs [][]float32, x []float32, n int, ws []*tensor.Tensor) {
	p := &thePool
	if !p.mu.TryLock() {
		j := qFallback.Get().(*qJob)
		j.setupTiled(cfg, outs, x, n, ws)
		j.prepGroups(0, len(j.groups16))
		j.run(0, 0, j.units)
		j.reset()
		qFallback.Put(j)
		return
	}
	defer endQMatMul()
	j := &theQJob
	j.setupTiled(cfg, outs, x, n, ws)
	t := cfg.Threads
	if n*j.units*j.cols < 4*cfg.SmallWork {
		t = 1
	}
	// The activations, a token group per unit: quantizing and interleaving
	// them is a few percent of the work, too much to leave to one thread.
	if g := len(j.groups16); t > 1 && g > 1 {
		p.runLocked(min(t, g), g, 1, (*gemmActTask)(j))
	} else {
		j.prepGroups(0, g)
	}
	// Grains are whole tiles, several per worker for balance.
	tiles := (j.units + qGemmTile - 1) / qGemmTile
	grain := qGemmTile * max(1, (tiles+4*t-1)/(4*t))
	k := max(1, min(t, (j.units+grain-1)/grain))
	if k == 1 {
		j.run(0, 0, j.units)
	} else {
		p.runLocked(k, j.units, grain, j)
	}
}

// multiGemmOK reports whether MatMulMulti can run ws as one qGemmMulti job:
// two or more weights of one qGemmRoute type and width whose sizes pass
// MatMul's checks.
func multiGemmOK(cfg *Config, x []float32, n int, outs [][]float32, ws []*tensor.Tensor) bool {
	if !multiSizesOK(x, n, outs, ws) || !qGemmRoute(cfg, active, ws[0].DType, n) {
		return false
	}
	for _, w := range ws[1:] {
		if w.DType != ws[0].DType {
			return false
		}
	}
	return true
}

// gemmActTask quantizes and interleaves the job's token groups [lo, hi).
type gemmActTask qJob

func (a *gemmActTask) run(_, lo, hi int) { (*qJob)(a).prepGroups(lo, hi) }

// setupTiled is setup for a tiled job (the sixteen-row kernels of the
// weights' type at the active level, which qGemmRoute found): the targets,
// the token groups and the buffers; prepGroups then fills the activations.
func (j *qJob) setupTiled(cfg *Config, outs [][]float32, x []float32, n int, ws []*tensor.Tensor) {
	j.setupTargets(outs, x, n, ws, false)
	dt := ws[0].DType
	j.tiled = true
	j.gemm16, j.dt16 = gemm16For(active, dt), dt
	if !cfg.NoAMX {
		j.gemm16 = gemm16AMX(j.gemm16, dt)
	}
	j.groups16 = j.groups16[:0]
	if j.gemm16.ok() {
		if size := j.gemm16.actsSize(n, j.cols); cap(j.abuf) < size {
			j.abuf = make([]byte, size)
		}
		j.groups16 = j.gemm16.groups(j.groups16, n, j.cols)
	} else {
		j.quantActs(0, n) // the row-kernel fallback (runTiled)
	}
}

// prepGroups quantizes the tokens of groups [lo, hi) and interleaves them
// for the sixteen-row kernels; calls for disjoint ranges may run
// concurrently.
func (j *qJob) prepGroups(lo, hi int) {
	for _, gr := range j.groups16[lo:hi] {
		j.quantActs(gr.t, gr.t+gr.n)
	}
	j.interleave(j.groups16[lo:hi])
}

// runTiled computes rows [lo, hi) of one target tile by tile, every
// activation against each tile.
func (j *qJob) runTiled(tg *qTarget, lo, hi int) {
	if j.gemm16.ok() {
		j.runTiled16(tg, lo, hi)
		return
	}
	rb, rows, data, out := tg.rb, tg.rows, tg.data, tg.out
	for r0 := lo; r0 < hi; r0 += qGemmTile {
		r1 := min(r0+qGemmTile, hi)
		wt := data[r0*rb : r1*rb]
		if tg.rowsFn != nil {
			for t := 0; t < j.n; t++ {
				tg.rowsFn(out[t*rows+r0:t*rows+r1], wt, rb, &j.acts[t])
			}
			continue
		}
		for t := 0; t < j.n; t++ {
			a, o := &j.acts[t], out[t*rows:]
			for r := r0; r < r1; r++ {
				o[r] = tg.dot(data[r*rb:(r+1)*rb], a)
			}
		}
	}
}
