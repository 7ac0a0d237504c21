package kernel

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// catch runs f and returns what it panicked with (nil: no panic).
func catch(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// checkPoolWorks runs a plain Parallel job and a MatMul and checks them.
func checkPoolWorks(t *testing.T) {
	t.Helper()
	var sum atomic.Int64
	Parallel(1000, func(lo, hi int) { sum.Add(int64(hi - lo)) })
	if sum.Load() != 1000 {
		t.Fatalf("after the panic Parallel covered %d of 1000", sum.Load())
	}
	r := rand.New(rand.NewPCG(5, 6))
	w, err := makeWeight(r, tensor.F32, 64, 96)
	if err != nil {
		t.Fatal(err)
	}
	x := randVec(r, 3*96)
	want, mag := refMatMul(t, x, 3, w)
	checkMatMul(t, x, 3, w, want, mag)
}

// TestParallelPanic: a panic in any participant (the caller's chunk, a
// worker's chunk, a nested job) reaches the caller as a *JobPanic with the
// original value and its stack, after every participant has left the job,
// and the pool keeps working.
func TestParallelPanic(t *testing.T) {
	defer SetThreads(0)
	errBoom := errors.New("boom")
	cases := []struct {
		name    string
		threads int
		run     func(active *atomic.Int32)
		value   any
	}{
		{name: "caller chunk", threads: 4, value: "caller",
			run: func(active *atomic.Int32) {
				Parallel(4, func(lo, hi int) {
					active.Add(1)
					defer active.Add(-1)
					if lo == 0 {
						panic("caller")
					}
				})
			}},
		{name: "last chunk", threads: 4, value: errBoom,
			run: func(active *atomic.Int32) {
				Parallel(4000, func(lo, hi int) {
					active.Add(1)
					defer active.Add(-1)
					if hi == 4000 {
						panic(errBoom)
					}
				})
			}},
		{name: "every chunk", threads: 3, value: "all",
			run: func(active *atomic.Int32) {
				Parallel(3, func(lo, hi int) {
					active.Add(1)
					defer active.Add(-1)
					panic("all")
				})
			}},
		{name: "nested", threads: 2, value: "inner",
			run: func(active *atomic.Int32) {
				Parallel(2, func(lo, hi int) {
					active.Add(1)
					defer active.Add(-1)
					// The pool is busy: the inner job runs inline.
					Parallel(10, func(lo2, hi2 int) {
						if lo == 1 && hi2 == 10 {
							panic("inner")
						}
					})
				})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			SetThreads(tc.threads)
			for rep := 0; rep < 20; rep++ {
				var active atomic.Int32
				v := catch(func() { tc.run(&active) })
				if n := active.Load(); n != 0 {
					t.Fatalf("Parallel returned with %d chunks still running", n)
				}
				jp, ok := v.(*JobPanic)
				if !ok {
					t.Fatalf("panicked with %T %v, want a *JobPanic", v, v)
				}
				if jp.Value != tc.value {
					t.Errorf("value %v, want %v", jp.Value, tc.value)
				}
				if err, isErr := tc.value.(error); isErr && !errors.Is(jp, err) {
					t.Errorf("errors.Is(%v, %v) is false", jp, err)
				}
				msg := jp.Error()
				if !strings.Contains(msg, fmt.Sprint(tc.value)) || !strings.Contains(msg, "pool_panic_test.go") {
					t.Errorf("message lacks the value or the stack:\n%s", msg)
				}
				checkPoolWorks(t)
			}
		})
	}
}

// TestMatMulPanicReleasesPool: a panic under MatMul (here a codebook row
// decoder) is carried to the caller and leaves the pool usable, on the
// pooled and on the single-goroutine paths.
func TestMatMulPanicReleasesPool(t *testing.T) {
	defer SetThreads(0)
	for _, th := range []int{1, 3} {
		SetThreads(th)
		rows, cols := 256, 256
		w := tensor.NewCoded("bad", []int{rows, cols}, panicDecoder{row: rows - 1})
		x := make([]float32, 4*cols)
		out := make([]float32, 4*rows)
		v := catch(func() { MatMul(out, x, 4, w) })
		if v == nil {
			t.Fatalf("threads %d: no panic", th)
		}
		if jp, ok := v.(*JobPanic); ok && jp.Value != "decoder" || !ok && v != "decoder" {
			t.Errorf("threads %d: panicked with %v", th, v)
		}
		checkPoolWorks(t)
	}
}

// panicDecoder panics when asked for row.
type panicDecoder struct{ row int }

func (d panicDecoder) DecodeRow(r int, dst []float32) error {
	if r == d.row {
		panic("decoder")
	}
	clear(dst)
	return nil
}

func (panicDecoder) Bits() float64 { return 32 }

// TestParallelPanicConcurrent: panicking and normal jobs from several
// goroutines at once (run with -race).
func TestParallelPanicConcurrent(t *testing.T) {
	defer SetThreads(0)
	SetThreads(4)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				var sum atomic.Int64
				boom := (i+g)%3 == 0
				v := catch(func() {
					Parallel(64, func(lo, hi int) {
						sum.Add(int64(hi - lo))
						if boom && hi == 64 {
							panic(i)
						}
					})
				})
				if boom != (v != nil) {
					t.Errorf("goroutine %d job %d: boom %v, panic %v", g, i, boom, v)
					return
				}
				if !boom && sum.Load() != 64 {
					t.Errorf("goroutine %d job %d: covered %d of 64", g, i, sum.Load())
					return
				}
			}
		}()
	}
	wg.Wait()
	checkPoolWorks(t)
}

// TestParallelChunks: the chunks cover [0, n) once each, their layout is
// fixed by n and chunks whatever the thread count, and a call from inside
// a job (the pool busy) gives the same layout.
func TestParallelChunks(t *testing.T) {
	defer SetThreads(0)
	for _, tc := range []struct{ n, chunks int }{
		{1, 4}, {7, 3}, {10, 4}, {64, 1}, {100, 7}, {5, 10}, {1000, 0},
	} {
		var want []string
		for _, th := range []int{1, 2, 3, 8} {
			SetThreads(th)
			chunks := tc.chunks
			if chunks == 0 {
				chunks = 5 // pass Threads() explicitly so layouts compare
			}
			for _, nested := range []bool{false, true} {
				got := make([]string, ChunkCount(tc.n, chunks))
				covered := make([]atomic.Int32, tc.n)
				run := func() {
					ParallelChunks(tc.n, chunks, func(c, lo, hi int) {
						got[c] = fmt.Sprintf("%d:%d-%d", c, lo, hi)
						for i := lo; i < hi; i++ {
							covered[i].Add(1)
						}
					})
				}
				if nested {
					Parallel(2, func(lo, hi int) {
						if lo == 0 {
							run()
						}
					})
				} else {
					run()
				}
				for i := range covered {
					if covered[i].Load() != 1 {
						t.Fatalf("n=%d chunks=%d threads=%d: unit %d covered %d times", tc.n, chunks, th, i, covered[i].Load())
					}
				}
				if want == nil {
					want = got
				} else if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("n=%d chunks=%d threads=%d nested=%v: layout %v, want %v", tc.n, chunks, th, nested, got, want)
				}
			}
		}
	}
}

// TestParallelGoexit: runtime.Goexit in a chunk, on a worker or on the
// caller, neither hangs the pool nor leaves a chunk running.
func TestParallelGoexit(t *testing.T) {
	defer SetThreads(0)
	SetThreads(3)
	for rep := 0; rep < 20; rep++ {
		var running atomic.Int32
		done := make(chan any)
		go func() {
			var v any
			defer func() { done <- v }()
			v = catch(func() {
				Parallel(3000, func(lo, hi int) {
					running.Add(1)
					defer running.Add(-1)
					if lo == 0 || hi == 3000 {
						runtime.Goexit()
					}
				})
			})
		}()
		v := <-done
		if n := running.Load(); n != 0 {
			t.Fatalf("%d chunks still running", n)
		}
		if jp, ok := v.(*JobPanic); v != nil && (!ok || !strings.Contains(fmt.Sprint(jp.Value), "Goexit")) {
			t.Fatalf("ended with %v", v)
		}
		checkPoolWorks(t)
	}
}
