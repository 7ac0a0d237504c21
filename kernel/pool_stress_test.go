package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestPoolStress runs many tiny jobs back to back while the participant
// count changes from job to job and other goroutines keep the processors
// busy: the pattern that once let a worker read the next job's participant
// count before that job was published, and so hang the pool.
func TestPoolStress(t *testing.T) {
	defer SetThreads(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() { // background load
			defer wg.Done()
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
					for j := 0; j < 1000; j++ {
						x += j
					}
					runtime.Gosched()
				}
			}
		}()
	}
	var sum atomic.Int64
	fn := func(lo, hi int) { sum.Add(int64(hi - lo)) }
	iters := 20000
	if testing.Short() {
		iters = 2000
	}
	for i := 0; i < iters; i++ {
		SetThreads(1 + i%4)
		n := 1 + i%7
		sum.Store(0)
		Parallel(n, fn)
		if got := sum.Load(); got != int64(n) {
			t.Fatalf("iteration %d: covered %d of %d", i, got, n)
		}
	}
	close(stop)
	wg.Wait()
}
