package kernel

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// task is one parallel job: run handles units [lo, hi) as participant
// worker (0 is the calling goroutine, 1.. the pool's goroutines).
type task interface {
	run(worker, lo, hi int)
}

// pool is a set of long-lived worker goroutines. One job runs at a time
// (mu); a caller that finds the pool busy — another goroutine's job, or a
// nested call from inside a job — runs its work inline instead of waiting,
// so nesting cannot deadlock.
//
// A decode step runs dozens of small jobs back to back, so waking parked
// goroutines for each (a futex round trip, several microseconds) would cost
// as much as the work. Workers therefore spin for Config.Spin after a job,
// watching seq for the next one, before they park on their wake channel;
// the caller likewise spins on pending before blocking on done. Wake-up
// tokens are sent without blocking into one-slot channels and may be
// stale; every waiter re-checks the state it waits for (the job word, the
// pending count) after each token, and the state is always written before
// the token is sent, so no wake-up is lost and a stale one costs a loop.
//
// A panic in a job, on any participant, is recovered where it happens: the
// rest of the job is abandoned (no new chunks are handed out), the caller
// waits until every participant has left the job, and then panics again in
// its own goroutine with a *JobPanic carrying the original value and stack.
// The pool's lock is released by a deferred unlock, so the pool stays
// usable.
type pool struct {
	mu   sync.Mutex
	wake []chan struct{} // one per worker goroutine (worker i+1)
	done chan struct{}   // the last worker's signal to a blocked caller

	// The current job, written under mu before seq is advanced.
	t        task
	n, grain int
	next     atomic.Int64
	seq      atomic.Uint64 // job counter << jobShift | participants (the caller and workers 1..k-1)
	pending  atomic.Int32  // participating workers not yet finished

	panicked atomic.Pointer[JobPanic] // the current job's first panic

	scratch [][]float32 // per participant, grown on demand
	errs    []error     // per participant, for MatMul

	ft funcTask // Parallel's job
	mm mmJob    // MatMul's job
}

var thePool pool

// A job word: its counter above jobShift, its participant count below.
const (
	jobShift        = 16
	jobParticipants = 1<<jobShift - 1
)

// spin is iteration i of a spin-wait. It yields the processor now and then:
// the goroutine being waited for may be queued on this one's P (the Go
// scheduler runs a goroutine readied by a channel send on the sender's P).
func spin(i int) {
	if i%8 == 0 {
		runtime.Gosched()
	} else {
		spinPause()
	}
}

// ensure starts worker goroutines so that k participants exist. Caller
// holds mu.
func (p *pool) ensure(k int) {
	if p.done == nil {
		p.done = make(chan struct{}, 1)
	}
	for len(p.wake) < k-1 {
		ch := make(chan struct{}, 1)
		p.wake = append(p.wake, ch)
		go p.worker(len(p.wake), ch, p.seq.Load())
	}
	for len(p.scratch) < k {
		p.scratch = append(p.scratch, nil)
		p.errs = append(p.errs, nil)
	}
}

func (p *pool) worker(id int, wake chan struct{}, last uint64) {
	for {
		// Wait for the next job: spin a little, then block on wake. Wake-ups
		// may be stale (a token sent while this worker was spinning): the
		// job word is re-read after every one, so a stale token only costs
		// a loop, and no wake-up can be lost because the publisher stores
		// the job word before it sends.
		s := p.seq.Load()
		deadline := time.Now().Add(config.Load().Spin)
		for i := 1; s == last; i++ {
			spin(i)
			if i%64 == 0 && time.Now().After(deadline) {
				<-wake
			}
			s = p.seq.Load()
		}
		// s names one job and carries its participant count, read in one
		// atomic load: a count read separately could belong to the next
		// job, whose fields may still be being written.
		last = s
		if id >= int(s&jobParticipants) {
			continue // not a participant of this job
		}
		p.workSafe(id)
		p.leave()
	}
}

// leave marks one worker as done with the current job.
func (p *pool) leave() {
	if p.pending.Add(-1) == 0 {
		select { // the caller may be blocked on done
		case p.done <- struct{}{}:
		default: // a token is already there
		}
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

// workSafe is work with a panic recovered: the job is abandoned and the
// panic kept for the caller. A runtime.Goexit (testing's FailNow) in fn is
// no panic, but the goroutine still ends: on a worker, a replacement is
// started and the caller gets a *JobPanic saying so; on the caller, it
// waits for the workers to leave the job before it goes.
func (p *pool) workSafe(id int) {
	finished := false
	defer func() {
		if finished {
			return
		}
		r := recover()
		p.next.Store(int64(p.n)) // hand out no more chunks
		if r != nil {
			p.panicked.CompareAndSwap(nil, &JobPanic{Value: r, Worker: id, Stack: debug.Stack()})
			return
		}
		// runtime.Goexit: this goroutine ends when the deferred calls do.
		if id == 0 {
			p.waitWorkers()
			p.panicked.Store(nil)
			p.t = nil
			return
		}
		p.panicked.CompareAndSwap(nil, &JobPanic{Value: "runtime.Goexit called in a parallel job", Worker: id, Stack: debug.Stack()})
		go p.worker(id, p.wake[id-1], p.seq.Load())
		p.leave()
	}()
	p.work(id)
	finished = true
}

// JobPanic is the value Parallel and MatMul panic with when fn (or a
// kernel) panicked on one of the job's participants: the original value,
// the participant (0: the calling goroutine) and its stack at the panic.
type JobPanic struct {
	Value  any
	Worker int
	Stack  []byte
}

func (e *JobPanic) Error() string {
	return fmt.Sprintf("kernel: panic in a parallel job (participant %d): %v\n\n%s", e.Worker, e.Value, e.Stack)
}

// Unwrap returns the original value when it is an error.
func (e *JobPanic) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// runLocked runs t over [0, n) in chunks of grain with k participants (the
// caller among them), and returns when every participant has left the job.
// If one panicked, it then panics with the *JobPanic. Caller holds mu (and
// releases it in a deferred call); k <= ceil(n/grain).
func (p *pool) runLocked(k, n, grain int, t task) {
	p.ensure(k)
	p.t, p.n, p.grain = t, n, grain
	p.next.Store(0)
	p.pending.Store(int32(k - 1))
	// Publish the job to spinning workers: a new counter with the
	// participant count in its low bits.
	seq := (p.seq.Load()>>jobShift+1)<<jobShift | uint64(k)
	p.seq.Store(seq)
	for i := 0; i < k-1; i++ {
		select {
		case p.wake[i] <- struct{}{}:
		default: // already has a token: it will wake
		}
	}
	p.workSafe(0)
	p.waitWorkers()
	p.t = nil
	if e := p.panicked.Swap(nil); e != nil {
		panic(e)
	}
}

// waitWorkers returns when every worker has left the current job.
func (p *pool) waitWorkers() {
	deadline := time.Now().Add(config.Load().Spin)
	for i := 1; p.pending.Load() != 0; i++ {
		spin(i)
		if i%64 == 0 && time.Now().After(deadline) {
			<-p.done // possibly stale: the loop re-checks pending
		}
	}
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
//
// If fn panics on any goroutine, Parallel waits for the other chunks that
// are running to end, skips those not started, and panics in the calling
// goroutine with a *JobPanic holding the original value and stack; the
// pool stays usable. A runtime.Goexit in fn (testing's FailNow) on a pool
// goroutine is reported the same way; on the calling goroutine it ends that
// goroutine once the others have left the job.
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
	defer p.endParallel()
	chunk := (n + t - 1) / t
	p.ft.fn = fn
	p.runLocked((n+chunk-1)/chunk, n, chunk, &p.ft)
}

// endParallel drops Parallel's job and releases the pool (deferred, so a
// panic releases it too).
func (p *pool) endParallel() {
	p.ft.fn = nil
	p.mu.Unlock()
}

// ParallelChunks splits [0, n) into min(chunks, n) contiguous chunks of
// ⌈n/chunks⌉ units (the last may be shorter; chunks <= 0: Threads()) and
// runs fn(i, lo, hi) for every chunk i on the pool, returning when all are
// done. The split depends on n and chunks alone, not on how many
// goroutines run it or whether the pool is busy, so per-chunk results
// (partial sums in a slice indexed by i, say) combine the same way every
// time. Panics are carried to the caller as in Parallel.
func ParallelChunks(n, chunks int, fn func(chunk, lo, hi int)) {
	if n <= 0 {
		return
	}
	if chunks <= 0 {
		chunks = Threads()
	}
	size := (n + min(chunks, n) - 1) / min(chunks, n)
	k := (n + size - 1) / size
	Parallel(k, func(c0, c1 int) {
		for c := c0; c < c1; c++ {
			fn(c, c*size, min(c*size+size, n))
		}
	})
}

// ChunkCount is the number of chunks ParallelChunks(n, chunks, …) runs,
// for sizing per-chunk results.
func ChunkCount(n, chunks int) int {
	if n <= 0 {
		return 0
	}
	if chunks <= 0 {
		chunks = Threads()
	}
	size := (n + min(chunks, n) - 1) / min(chunks, n)
	return (n + size - 1) / size
}
