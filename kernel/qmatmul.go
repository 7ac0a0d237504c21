package kernel

import (
	"sync"

	"github.com/terse-llm/terse/tensor"
)

// The integer decode path: for quantized weights and few activation
// vectors, MatMul quantizes each activation once (qact.go) and dots every
// weight row with it in integer arithmetic (qdot.go, qdot_amd64.s) straight
// from storage, instead of widening rows to float32.

// qMaxN is the largest activation count MatMul sends down the integer path;
// larger batches use the dequantize-tile + float micro-kernel path, which
// widens each weight tile once for all tokens. On the development machine
// (one thread, 2048×768) the integer path is ahead up to about 20 tokens for
// Q4_0 and past 24 for Q6_K (BenchmarkQMatMulCrossover), because the
// dequantizers are pure Go.
var qMaxN = 16

// qDisabled forces quantized weights onto the dequantize path (benchmarks
// and tests compare the two).
var qDisabled = false

// qRoute reports whether MatMul should use the integer path for n
// activations of weights of type dt.
func qRoute(dt tensor.DType, n int) bool {
	if qDisabled || n > qMaxN {
		return false
	}
	_, ok := qTypeOf(dt)
	return ok
}

// qJob is one integer-path MatMul call, split over weight rows.
type qJob struct {
	out, x []float32
	n      int
	rows   int
	cols   int
	rb     int
	data   []byte
	dot    qdotFn
	acts   []q8Act // one per activation vector, grown on demand
	// Backing store for acts, grown on demand and kept.
	qbuf       []int8
	dbuf, sbuf []float32
	bsbuf      []int16
}

var (
	theQJob   qJob // used under thePool.mu
	qFallback = sync.Pool{New: func() any { return new(qJob) }}
)

// qMatMul is MatMul for qRoute(w.DType, n) weights whose size checks have
// passed; rb is the byte length of one row.
func qMatMul(out, x []float32, n int, w *tensor.Tensor, rb int) {
	p := &thePool
	if !p.mu.TryLock() {
		j := qFallback.Get().(*qJob)
		j.setup(out, x, n, w, rb)
		j.run(0, 0, j.rows)
		j.reset()
		qFallback.Put(j)
		return
	}
	j := &theQJob
	j.setup(out, x, n, w, rb)
	t := Threads()
	if n*j.rows*j.cols < 4*smallWork {
		t = 1
	}
	grain := max(16, (j.rows+4*t-1)/(4*t))
	k := max(1, min(t, (j.rows+grain-1)/grain))
	if k == 1 {
		j.run(0, 0, j.rows)
	} else {
		p.runLocked(k, j.rows, grain, j)
	}
	j.reset()
	p.mu.Unlock()
}

// setup quantizes the n activations and picks the row kernel.
func (j *qJob) setup(out, x []float32, n int, w *tensor.Tensor, rb int) {
	qt, _ := qTypeOf(w.DType)
	j.out, j.x, j.n, j.rb, j.data = out, x, n, rb, w.Data
	j.rows, j.cols = w.Rows(), w.Cols()
	j.dot = qdotFor(active, w.DType, qt.generic)
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
	for t := 0; t < n; t++ {
		a := &j.acts[t]
		a.q = j.qbuf[t*cols : (t+1)*cols]
		a.d = j.dbuf[t*nb : (t+1)*nb]
		xt := x[t*cols : (t+1)*cols]
		if qt.act == actQ8_K {
			a.s = nil
			a.bs = j.bsbuf[t*cols/16 : (t+1)*cols/16]
			quantizeQ8_K(a, xt)
		} else {
			a.s = j.sbuf[t*nb : (t+1)*nb]
			a.bs = nil
			quantQ8_0(active, a, xt)
		}
	}
}

func (j *qJob) reset() {
	j.out, j.x, j.data, j.dot = nil, nil, nil, nil
}

// run computes rows [lo, hi) for every activation.
func (j *qJob) run(_, lo, hi int) {
	rb, rows, data, out, dot := j.rb, j.rows, j.data, j.out, j.dot
	for r := lo; r < hi; r++ {
		w := data[r*rb : (r+1)*rb]
		for t := 0; t < j.n; t++ {
			out[t*rows+r] = dot(w, &j.acts[t])
		}
	}
}
