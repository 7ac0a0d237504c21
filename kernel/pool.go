package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

var threads atomic.Int32

func init() { threads.Store(int32(runtime.GOMAXPROCS(0))) }

// SetThreads sets how many goroutines Parallel and MatMul use (n <= 0: as
// many as GOMAXPROCS).
func SetThreads(n int) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	threads.Store(int32(n))
}

// Threads reports the worker count.
func Threads() int { return int(threads.Load()) }

// task is one parallel job: run handles units [lo, hi) as participant
// worker (0 is the calling goroutine, 1.. the pool's goroutines).
type task interface {
	run(worker, lo, hi int)
}

// pool is a set of long-lived worker goroutines, woken per job. One job
// runs at a time (mu); a caller that finds the pool busy — another
// goroutine's job, or a nested call from inside a job — runs its work
// inline instead of waiting, so nesting cannot deadlock.
type pool struct {
	mu   sync.Mutex
	wake []chan struct{} // one per worker goroutine (worker i+1)
	wg   sync.WaitGroup

	// The current job, written under mu before the workers are woken.
	t        task
	n, grain int
	next     atomic.Int64

	scratch [][]float32 // per participant, grown on demand
	errs    []error     // per participant, for MatMul

	ft funcTask // Parallel's job
	mm mmJob    // MatMul's job
}

var thePool pool

// ensure starts worker goroutines so that k participants exist. Caller
// holds mu.
func (p *pool) ensure(k int) {
	for len(p.wake) < k-1 {
		ch := make(chan struct{}, 1)
		p.wake = append(p.wake, ch)
		go p.worker(len(p.wake), ch)
	}
	for len(p.scratch) < k {
		p.scratch = append(p.scratch, nil)
		p.errs = append(p.errs, nil)
	}
}

func (p *pool) worker(id int, wake chan struct{}) {
	for range wake {
		p.work(id)
		p.wg.Done()
	}
}

// work claims grain-sized chunks of the current job until none is left.
func (p *pool) work(id int) {
	n, g := p.n, p.grain
	for {
		lo := int(p.next.Add(int64(g))) - g
		if lo >= n {
			return
		}
		p.t.run(id, lo, min(lo+g, n))
	}
}

// runLocked runs t over [0, n) in chunks of grain with k participants (the
// caller among them). Caller holds mu; k <= ceil(n/grain).
func (p *pool) runLocked(k, n, grain int, t task) {
	p.ensure(k)
	p.t, p.n, p.grain = t, n, grain
	p.next.Store(0)
	p.wg.Add(k - 1)
	for i := 0; i < k-1; i++ {
		p.wake[i] <- struct{}{}
	}
	p.work(0)
	p.wg.Wait()
	p.t = nil
}

// buf returns participant worker's scratch with at least size elements.
// Only that participant may use it during the job.
func (p *pool) buf(worker, size int) []float32 {
	b := p.scratch[worker]
	if cap(b) < size {
		b = make([]float32, size+size/4)
		p.scratch[worker] = b
	}
	return b[:size]
}

type funcTask struct{ fn func(lo, hi int) }

func (f *funcTask) run(_, lo, hi int) { f.fn(lo, hi) }

// Parallel splits [0, n) into at most Threads() contiguous chunks and runs
// fn on each, concurrently, returning when all are done. The calling
// goroutine takes part; the others are persistent pool workers, so a call
// starts no goroutine and, for an fn value that is not a fresh closure,
// allocates nothing. Calls may come from several goroutines at once, or
// from inside fn: whoever finds the pool busy runs fn(0, n) inline.
func Parallel(n int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	t := min(Threads(), n)
	if t <= 1 || !thePool.mu.TryLock() {
		fn(0, n)
		return
	}
	p := &thePool
	chunk := (n + t - 1) / t
	p.ft.fn = fn
	p.runLocked((n+chunk-1)/chunk, n, chunk, &p.ft)
	p.ft.fn = nil
	p.mu.Unlock()
}
