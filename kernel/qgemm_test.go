package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// qGemmTestTypes are the weight types the tiled integer GEMM takes.
var qGemmTestTypes = []tensor.DType{tensor.Q4_0, tensor.Q8_0}

// gemmActs fills n activations of cols columns: token t%5 selects random
// normal values (0), zeros (1), values scaled by 1e4 (2) or by 1e-20 (3),
// or one spike among zeros (4).
func gemmActs(r *rand.Rand, n, cols int) []float32 {
	x := make([]float32, n*cols)
	for t := 0; t < n; t++ {
		xt := x[t*cols : (t+1)*cols]
		switch t % 5 {
		case 0, 2, 3:
			s := []float64{1, 0, 1e4, 1e-20}[t%5]
			for i := range xt {
				xt[i] = float32(r.NormFloat64() * s)
			}
		case 4:
			xt[r.IntN(cols)] = -3
		}
	}
	return x
}

// TestQGemm checks the tiled integer GEMM against the float64 dot of each
// dequantized weight row with each Q8_0-quantized activation (ggml's
// reference quantizer), at every level and thread count, with odd token
// and row counts, odd block counts (the four-token kernel's fallback) and
// adversarial weights (zero quants, all-ones quants, ±65504 scales).
func TestQGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	defer SetThreads(0)
	for _, dt := range qGemmTestTypes {
		for _, sh := range [][2]int{{1, 64}, {17, 96}, {33, 128}, {50, 2048}} {
			rows, cols := sh[0], sh[1]
			nb := cols / q8Block
			rb, _ := dt.RowBytes(cols)
			for wmode := 0; wmode < 4; wmode++ {
				data := randBlocks(r, dt, rows*nb, wmode)
				w, err := tensor.New("w", dt, []int{rows, cols}, data)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{17, 22, 39} {
					x := gemmActs(r, n, cols)
					want := make([]float64, n*rows)
					mag := make([]float64, n*rows)
					for tk := 0; tk < n; tk++ {
						a := &q8Act{Q: make([]int8, cols), D: make([]float32, nb), S: make([]float32, nb)}
						ggml.QuantizeActQ8_0(a, x[tk*cols:(tk+1)*cols])
						for i := 0; i < rows; i++ {
							want[tk*rows+i], mag[tk*rows+i] = refQDot(t, dt, data[i*rb:(i+1)*rb], a)
						}
					}
					for _, l := range levels() {
						for _, th := range []int{1, 2} {
							name := fmt.Sprintf("%s %dx%d wmode=%d n=%d %v threads=%d", dt, rows, cols, wmode, n, l, th)
							SetThreads(th)
							out := make([]float32, n*rows+1)
							out[n*rows] = 42
							withLevel(t, l, func() { qGemm(config.Load(), out, x, n, w) })
							for i := 0; i < n*rows; i++ {
								tol := 1e-5*mag[i] + 1e-30
								if d := math.Abs(float64(out[i]) - want[i]); !(d <= tol) {
									t.Fatalf("%s: out[%d] = %g, want %g (mag %g)", name, i, out[i], want[i], mag[i])
								}
							}
							if out[n*rows] != 42 {
								t.Fatalf("%s: wrote past n*rows", name)
							}
						}
					}
				}
			}
		}
	}
}

// TestQGemmRoute checks which MatMul calls take the tiled integer GEMM:
// types with a four-token kernel at the level, n above QMaxBatch and at
// least QGemmMin.
func TestQGemmRoute(t *testing.T) {
	on := &Config{QMaxBatch: qMaxN, QGemmMin: 32}
	for _, l := range levels() {
		for _, c := range []struct {
			cfg     *Config
			dt      tensor.DType
			n, cols int
			ok      bool // routed where the level has a kernel for dt
		}{
			{on, tensor.Q4_0, 32, 2048, true}, {on, tensor.Q8_0, 512, 1024, true}, {on, tensor.Q4_0, 31, 2048, false},
			{on, tensor.Q4_0, 64, 768, true}, {on, tensor.Q4_K, 64, 2048, true}, {on, tensor.IQ2_XS, 64, 2048, false}, {on, tensor.F32, 64, 2048, false},
			{&Config{QMaxBatch: qMaxN}, tensor.Q4_0, 64, 2048, false},
			{&Config{QMaxBatch: 64, QGemmMin: 1}, tensor.Q4_0, 64, 2048, false},
			{&Config{QMaxBatch: qMaxN, QGemmMin: 1, QDisabled: true}, tensor.Q4_0, 64, 2048, false},
		} {
			want := c.ok && gemm16For(l, c.dt).ok()
			if got := qGemmRoute(c.cfg, l, c.dt, c.n); got != want {
				t.Errorf("qGemmRoute(%+v, %v, %s, %d) = %v, want %v", *c.cfg, l, c.dt, c.n, got, want)
			}
		}
	}
}

// TestQGemmMatMul checks that MatMul, where it routes to the GEMM, gives
// qGemm's results bit for bit, also from goroutines calling at once (the
// pool busy: fallback jobs).
func TestQGemmMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	defer SetThreads(0)
	SetThreads(2)
	rows, cols, n := 70, 1024, 37
	w, err := makeWeight(r, tensor.Q4_0, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	x := randVec(r, n*cols)
	for _, l := range levels() {
		withLevel(t, l, func() {
			defer withConfig(func(c *Config) { c.QDisabled, c.QMaxBatch, c.QGemmMin = false, qMaxN, qMaxN+1 })()
			want := make([]float32, n*rows)
			qGemm(config.Load(), want, x, n, w)
			const g = 4
			outs := make([][]float32, g)
			errs := make(chan error, g)
			for i := range outs {
				outs[i] = make([]float32, n*rows)
				go func() { errs <- MatMul(outs[i], x, n, w) }()
			}
			for range outs {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if !qGemmRoute(config.Load(), l, tensor.Q4_0, n) {
				return // the dequantize path: TestMatMul's business
			}
			for i, out := range outs {
				for k := range out {
					if out[k] != want[k] {
						t.Fatalf("%v goroutine %d: out[%d] = %g, qGemm %g", l, i, k, out[k], want[k])
					}
				}
			}
		})
	}
}

// TestQGemmAllocs checks that the tiled integer GEMM allocates nothing in
// steady state.
func TestQGemmAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	defer SetThreads(0)
	for _, dt := range qGemmTestTypes {
		rows, cols, n := 256, 1024, 40
		w, err := makeWeight(r, dt, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		x := randVec(r, n*cols)
		out := make([]float32, n*rows)
		for _, th := range []int{1, 2} {
			SetThreads(th)
			cfg := config.Load()
			qGemm(cfg, out, x, n, w) // warm up scratch
			allocs := testing.AllocsPerRun(10, func() { qGemm(cfg, out, x, n, w) })
			if allocs != 0 {
				t.Errorf("%s threads=%d: %v allocs per call", dt, th, allocs)
			}
		}
	}
}
