package kernel

import "github.com/terse-llm/terse/tensor"

// The integer prefill path: for Q4_0 and Q8_0 weights and batches too
// large for the decode path (n > Config.QMaxBatch, n >= Config.QGemmMin),
// qGemm quantizes the n activations once to Q8_0 (qJob.setup, ggml's
// rounding) and walks the weights in tiles of qGemmTile rows: each tile is
// loaded into L1 once and dotted with every activation in turn by the
// decode path's row kernels (one activation against several rows per
// call), so weights are read from memory once per call. Where the level has a
// four-token micro-kernel (gemm4For: Q4_0 or Q8_0 with AVX512_VNNI) it takes the
// tokens four at a time, unpacking each weight block once for all four;
// the remaining tokens (and every token elsewhere) use the row kernels,
// whose results equal the decode path's bit for bit. MatMul routes only
// the types with a four-token kernel here (qGemmRoute): without one the
// tiles measured slower than the dequantize path. Row
// tiles are split over the kernel pool; the activation buffers are the
// decode job's, grown on demand and kept, so steady state allocates
// nothing.

// qGemmTile is how many weight rows one tile holds: 16 rows of a 2048-column
// Q4_0 (18 KiB) or Q8_0 (34 KiB) weight stay in a 48 KiB L1 cache next to
// one activation (2.3 KiB).
const qGemmTile = 16

// gemm4Fn is a four-token micro-kernel: for rows weight rows of rb bytes
// from w and the four Q8_0 activations at q (quants qstride bytes apart)
// with scales d and D·Σq sums s (dstride floats apart), it sets
// out[j*ostride+i] to row i · activation j. nb is the block count per row,
// even and positive.
type gemm4Fn func(out []float32, rows, ostride int, w []byte, rb int, q []int8, qstride int, d, s []float32, dstride, nb int)

// qGemmMinCols is the narrowest weight MatMul sends down the tiled integer
// GEMM: with 2048 columns it measured 1.07-2× the dequantize path
// (BenchmarkQPrefill, 2 threads), with 768 columns (the 134M model's gate
// and up projections) no faster, as the per-row reductions weigh more.
const qGemmMinCols = 1024

// qGemmRoute reports whether MatMul sends n activations of dt weights with
// cols columns down the tiled integer GEMM under cfg at level l.
func qGemmRoute(cfg *Config, l level, dt tensor.DType, n, cols int) bool {
	if cfg.QDisabled || cfg.QGemmMin == 0 || n <= cfg.QMaxBatch || n < cfg.QGemmMin || cols < qGemmMinCols {
		return false
	}
	return qGemmType(dt) && gemm4For(l, dt) != nil
}

// qGemmType reports whether qGemm takes dt weights.
func qGemmType(dt tensor.DType) bool { return dt == tensor.Q4_0 || dt == tensor.Q8_0 }

// qGemm is MatMul for qGemmType weights whose size checks have passed.
func qGemm(cfg *Config, out, x []float32, n int, w *tensor.Tensor) {
	outs := [1][]float32{out}
	ws := [1]*tensor.Tensor{w}
	p := &thePool
	if !p.mu.TryLock() {
		j := qFallback.Get().(*qJob)
		j.setup(outs[:], x, n, ws[:])
		j.tiled, j.gemm4 = true, gemm4For(active, w.DType)
		j.run(0, 0, j.units)
		j.reset()
		qFallback.Put(j)
		return
	}
	defer endQMatMul()
	j := &theQJob
	j.setup(outs[:], x, n, ws[:])
	j.tiled, j.gemm4 = true, gemm4For(active, w.DType)
	t := cfg.Threads
	if n*j.units*j.cols < 4*cfg.SmallWork {
		t = 1
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

// runTiled computes rows [lo, hi) of one target tile by tile, every
// activation against each tile.
func (j *qJob) runTiled(tg *qTarget, lo, hi int) {
	rb, rows, data, out := tg.rb, tg.rows, tg.data, tg.out
	for r0 := lo; r0 < hi; r0 += qGemmTile {
		r1 := min(r0+qGemmTile, hi)
		wt := data[r0*rb : r1*rb]
		t0 := 0
		if nb := j.cols / q8Block; j.gemm4 != nil && nb%2 == 0 {
			for ; t0+4 <= j.n; t0 += 4 {
				j.gemm4(out[t0*rows+r0:], r1-r0, rows, wt, rb,
					j.qbuf[t0*j.cols:], j.cols, j.dbuf[t0*nb:], j.sbuf[t0*nb:], nb, nb)
			}
		}
		if tg.rowsFn != nil {
			for t := t0; t < j.n; t++ {
				tg.rowsFn(out[t*rows+r0:t*rows+r1], wt, rb, &j.acts[t])
			}
			continue
		}
		for t := t0; t < j.n; t++ {
			a, o := &j.acts[t], out[t*rows:]
			for r := r0; r < r1; r++ {
				o[r] = tg.dot(data[r*rb:(r+1)*rb], a)
			}
		}
	}
}
