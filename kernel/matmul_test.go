package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// makeWeight builds a rows×cols tensor of type dt with random contents.
func makeWeight(r *rand.Rand, dt tensor.DType, rows, cols int) (*tensor.Tensor, error) {
	rb, err := dt.RowBytes(cols)
	if err != nil {
		return nil, err
	}
	data := make([]byte, rows*rb)
	switch dt {
	case tensor.F32:
		return tensor.FromFloat32("w", []int{rows, cols}, randVec(r, rows*cols)), nil
	case tensor.F16, tensor.BF16:
		for i := 0; i < rows*cols; i++ {
			v := float32(r.NormFloat64())
			h := tensor.F32ToF16(v)
			if dt == tensor.BF16 {
				h = tensor.F32ToBF16(v)
			}
			data[2*i], data[2*i+1] = byte(h), byte(h>>8)
		}
	default:
		// Random blocks, redrawn until they dequantize to modest finite
		// values (random binary16 scales can be NaN or huge).
		bb, be := dt.BlockBytes(), dt.BlockSize()
		tmp := make([]float32, be)
	blocks:
		for b := 0; b < len(data); b += bb {
			for {
				for i := b; i < b+bb; i++ {
					data[i] = byte(r.Uint32())
				}
				if ggml.Dequantize(dt, data[b:b+bb], tmp) != nil {
					break blocks // unsupported: the caller skips
				}
				ok := true
				for _, v := range tmp {
					if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 1e3 {
						ok = false
					}
				}
				if ok {
					break
				}
			}
		}
	}
	return tensor.New("w", dt, []int{rows, cols}, data)
}

// refMatMul is the float64 reference, with Σ|products| per output.
func refMatMul(t *testing.T, x []float32, n int, w *tensor.Tensor) (want, mag []float64) {
	rows, cols := w.Rows(), w.Cols()
	wf := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		if err := ggml.Dequantize(w.DType, w.Row(r), wf[r*cols:(r+1)*cols]); err != nil {
			t.Fatalf("ggml.Dequantize(%s): %v", w.DType, err)
		}
	}
	want, mag = make([]float64, n*rows), make([]float64, n*rows)
	for tk := 0; tk < n; tk++ {
		for r := 0; r < rows; r++ {
			want[tk*rows+r], mag[tk*rows+r] = refDot(wf[r*cols:(r+1)*cols], x[tk*cols:(tk+1)*cols])
		}
	}
	return want, mag
}

func checkMatMul(t *testing.T, x []float32, n int, w *tensor.Tensor, want, mag []float64) {
	t.Helper()
	rows := w.Rows()
	out := make([]float32, n*rows+3)
	for i := range out {
		out[i] = float32(math.NaN())
	}
	if err := MatMul(out, x, n, w); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n*rows; i++ {
		if !closeTo(out[i], want[i], mag[i]) {
			t.Fatalf("token %d row %d: got %g, want %g (mag %g)", i/rows, i%rows, out[i], want[i], mag[i])
		}
	}
	for i := n * rows; i < len(out); i++ {
		if !math.IsNaN(float64(out[i])) {
			t.Fatalf("wrote past n*rows at %d", i)
		}
	}
}

// TestMatMul checks the float and dequantize paths to float32 accuracy; the
// integer path for quantized weights at small n rounds activations to 8 bits
// and has its own tests in qdot_test.go.
func TestMatMul(t *testing.T) {
	defer withConfig(func(c *Config) { c.QDisabled = true })()
	r := rand.New(rand.NewPCG(11, 12))
	shapes := [][2]int{{1, 32}, {5, 64}, {33, 96}, {64, 544}, {130, 160}}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q6_K} {
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			if dt.BlockSize() > 1 && cols%dt.BlockSize() != 0 {
				cols = dt.BlockSize() * (1 + cols/dt.BlockSize())
			}
			if dt == tensor.F32 || dt == tensor.F16 {
				cols += 3 // odd lengths: tails everywhere
			}
			w, err := makeWeight(r, dt, rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 2, 3, 7, 64} {
				x := randVec(r, n*cols)
				t.Run(fmt.Sprintf("%s/%dx%d/n=%d", dt, rows, cols, n), func(t *testing.T) {
					want, mag := refMatMul(t, x, n, w)
					for _, l := range levels() {
						withLevel(t, l, func() {
							for _, th := range []int{1, 2, 3} {
								restore := withConfig(func(c *Config) { c.Threads, c.TileRows, c.KBlock = th, 16, 512 })
								checkMatMul(t, x, n, w, want, mag)
								restore()
								// Many tiles, several column blocks.
								restore = withConfig(func(c *Config) { c.Threads, c.TileRows, c.KBlock = th, 4, 32 })
								checkMatMul(t, x, n, w, want, mag)
								restore()
							}
						})
					}
				})
			}
		}
	}
}

func TestMatMulUnalignedF32(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	rows, cols := 9, 21
	v := randVec(r, rows*cols)
	base := tensor.FromFloat32("w", []int{rows, cols}, v)
	data := make([]byte, len(base.Data)+1)
	copy(data[1:], base.Data)
	w := &tensor.Tensor{Name: "w", DType: tensor.F32, Shape: []int{rows, cols}, Data: data[1:]}
	for _, n := range []int{1, 5} {
		x := randVec(r, n*cols)
		want, mag := refMatMul(t, x, n, w)
		checkMatMul(t, x, n, w, want, mag)
	}
}

func TestMatMulErrors(t *testing.T) {
	w := tensor.FromFloat32("w", []int{4, 8}, make([]float32, 32))
	if err := MatMul(make([]float32, 3), make([]float32, 8), 1, w); err == nil {
		t.Error("short out: no error")
	}
	if err := MatMul(make([]float32, 4), make([]float32, 7), 1, w); err == nil {
		t.Error("short x: no error")
	}
	bad := &tensor.Tensor{Name: "i8", DType: tensor.I8, Shape: []int{2, 4}, Data: make([]byte, 8)}
	if err := MatMul(make([]float32, 2), make([]float32, 4), 1, bad); err == nil {
		t.Error("unsupported type: no error")
	}
	short := &tensor.Tensor{Name: "s", DType: tensor.F16, Shape: []int{2, 4}, Data: make([]byte, 15)}
	if err := MatMul(make([]float32, 2), make([]float32, 4), 1, short); err == nil {
		t.Error("short data: no error")
	}
	if err := MatMul(nil, nil, 0, w); err != nil {
		t.Errorf("n=0: %v", err)
	}
}

var sinkFn = func(lo, hi int) {}

func TestParallel(t *testing.T) {
	defer SetThreads(0)
	for _, th := range []int{1, 2, 3, 8} {
		SetThreads(th)
		for _, n := range []int{0, 1, 2, 3, 7, 100} {
			seen := make([]int, n)
			Parallel(n, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					seen[i]++
				}
			})
			for i, c := range seen {
				if c != 1 {
					t.Fatalf("threads=%d n=%d: index %d run %d times", th, n, i, c)
				}
			}
		}
	}
	// Nested calls run inline instead of deadlocking.
	SetThreads(4)
	var mu sync.Mutex
	total := 0
	Parallel(8, func(lo, hi int) {
		Parallel(10, func(a, b int) {
			mu.Lock()
			total += b - a
			mu.Unlock()
		})
	})
	if total != 40 {
		t.Fatalf("nested: total %d, want 40", total)
	}
}

func TestConcurrentCallers(t *testing.T) {
	// Exact float paths, so results can be compared tightly.
	defer withConfig(func(c *Config) { c.QDisabled = true })()
	r := rand.New(rand.NewPCG(15, 16))
	defer SetThreads(0)
	SetThreads(3)
	type job struct {
		w         *tensor.Tensor
		x         []float32
		n         int
		want, mag []float64
	}
	var jobs []job
	for i, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.Q8_0} {
		w, err := makeWeight(r, dt, 48+i, 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 9} {
			x := randVec(r, n*64)
			want, mag := refMatMul(t, x, n, w)
			jobs = append(jobs, job{w, x, n, want, mag})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := 0; it < 30; it++ {
				j := jobs[(g+it)%len(jobs)]
				out := make([]float32, j.n*j.w.Rows())
				if err := MatMul(out, j.x, j.n, j.w); err != nil {
					errs <- err
					return
				}
				for i, v := range out {
					if !closeTo(v, j.want[i], j.mag[i]) {
						errs <- fmt.Errorf("goroutine %d: %s n=%d: out[%d] = %g, want %g", g, j.w.DType, j.n, i, v, j.want[i])
						return
					}
				}
				Parallel(10, func(lo, hi int) {})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestNoAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := rand.New(rand.NewPCG(17, 18))
	defer SetThreads(0)
	SetThreads(2)
	if a := testing.AllocsPerRun(100, func() { Parallel(1000, sinkFn) }); a != 0 {
		t.Errorf("Parallel: %v allocs per call", a)
	}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.Q8_0} {
		w, err := makeWeight(r, dt, 256, 512)
		if err != nil {
			t.Fatal(err)
		}
		if ggml.Dequantize(dt, w.Row(0), make([]float32, 512)) != nil {
			continue
		}
		for _, n := range []int{1, 64} {
			x := randVec(r, n*512)
			out := make([]float32, n*256)
			if err := MatMul(out, x, n, w); err != nil { // warm up scratch
				t.Fatal(err)
			}
			a := testing.AllocsPerRun(20, func() { _ = MatMul(out, x, n, w) })
			if a != 0 {
				t.Errorf("MatMul %s n=%d: %v allocs per call", dt, n, a)
			}
		}
	}
}
