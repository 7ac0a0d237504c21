package kernel

import (
	"runtime"
	"sync"
)

var threads = runtime.GOMAXPROCS(0)

// SetThreads sets how many goroutines Parallel uses (n <= 0: all cores).
func SetThreads(n int) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	threads = n
}

// Threads reports the worker count.
func Threads() int { return threads }

// Parallel splits [0, n) into contiguous chunks and runs fn on each,
// concurrently, returning when all are done.
func Parallel(n int, fn func(lo, hi int)) {
	t := threads
	if t > n {
		t = n
	}
	if t <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + t - 1) / t
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() { defer wg.Done(); fn(lo, hi) }()
	}
	wg.Wait()
}
