package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// TestQTileRoute checks which decode batches take the sixteen-row kernels.
func TestQTileRoute(t *testing.T) {
	on := &Config{QMaxBatch: qMaxN, QTileMin: 2}
	for _, tc := range []struct {
		cfg  *Config
		l    level
		dt   tensor.DType
		n    int
		want bool
	}{
		{on, supported, tensor.Q4_0, 1, false},
		{on, supported, tensor.Q4_0, 2, true},
		{on, supported, tensor.Q8_0, 16, true},
		{on, supported, tensor.Q4_K, 8, true},
		{on, supported, tensor.Q6_K, 3, true},
		{on, supported, tensor.IQ2_XS, 8, false}, // no sixteen-row kernels
		{on, levelGeneric, tensor.Q4_0, 8, false},
		{on, levelAVX2, tensor.Q8_0, 3, false}, // AVX2 tiles: one-token passes for 2-3
		{on, levelAVX2, tensor.Q8_0, 4, true},
		{on, levelAVX2, tensor.Q3_K, 8, true},
		{on, levelAVX2, tensor.Q5_K, 8, false}, // AVX2 Q5_K tiles repack in Go
		{on, levelAVX2, tensor.Q5_0, 1, false}, // and are not exact row types
		{&Config{QMaxBatch: qMaxN}, supported, tensor.Q4_0, 8, false},
		{&Config{QMaxBatch: qMaxN, QTileMin: 9}, supported, tensor.Q8_0, 8, false},
	} {
		k := gemm16For(tc.l, tc.dt)
		want := tc.want && k.decode() && tc.n >= k.minDecode
		if got := qTileRoute(tc.cfg, tc.l, tc.dt, tc.n); got != want {
			t.Errorf("qTileRoute(%+v, %v, %s, %d) = %v, want %v", *tc.cfg, tc.l, tc.dt, tc.n, got, want)
		}
	}
}

// TestQTileDecodeBitExact checks decode-size batches (1..16 tokens) that
// take the sixteen-row kernels, through MatMul and MatMulMulti (one type,
// and mixed types, which run weight by weight), against ggml's
// generic dot of each weight row with each token's activation, bit for
// bit: random, zero, all-ones and ±65504-scale weights (randBlocks), normal,
// zero, huge, tiny and single-spike tokens (gemmActs), row counts with a
// partial last tile, one and two threads. Cases with a type that has no
// decode-size sixteen-row kernels at this level are left out: the route is
// off and TestDec4 covers these batch sizes.
func TestQTileDecodeBitExact(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	defer SetThreads(0)
	defer withConfig(func(c *Config) { c.QDisabled, c.QTileMin = false, 1 })()
	tested := 0
	type target struct {
		dt   tensor.DType
		rows int
	}
	for _, tc := range []struct {
		cols int
		tgs  []target
	}{
		{256, []target{{tensor.Q4_0, 16}}},
		{512, []target{{tensor.Q8_0, 37}}},
		{768, []target{{tensor.Q4_K, 50}}},
		{512, []target{{tensor.Q6_K, 21}}},
		{1024, []target{{tensor.Q8_0, 64}, {tensor.Q8_0, 16}, {tensor.Q8_0, 16}}},
		{256, []target{{tensor.Q4_0, 48}, {tensor.Q4_0, 300}}},
		{512, []target{{tensor.Q4_K, 32}, {tensor.Q4_K, 16}, {tensor.Q6_K, 16}}},
		{512, []target{{tensor.Q5_K, 21}, {tensor.Q5_K, 16}}},
		{512, []target{{tensor.Q3_K, 16}, {tensor.Q2_K, 37}}},
		{512, []target{{tensor.Q2_K, 37}, {tensor.Q2_K, 16}}},
		{256, []target{{tensor.Q4_1, 17}, {tensor.Q5_1, 16}, {tensor.Q5_0, 16}, {tensor.IQ4_NL, 16}}},
		// Several bands (gemm16Band tiles) a target, the last partial: the
		// eight-token kernels prefetch the next band's rows.
		{512, []target{{tensor.Q4_K, 150}, {tensor.Q4_K, 70}}},
		{256, []target{{tensor.Q5_K, 137}}},
		{512, []target{{tensor.Q6_K, 200}, {tensor.Q6_K, 64}}},
		{256, []target{{tensor.Q3_K, 130}}},
		{256, []target{{tensor.Q8_0, 150}, {tensor.Q8_0, 70}}},
		{512, []target{{tensor.Q4_0, 133}}},
		{256, []target{{tensor.Q5_0, 90}, {tensor.IQ4_NL, 90}}},
		{256, []target{{tensor.Q2_K, 150}}},
	} {
		var missing []tensor.DType
		for _, tg := range tc.tgs {
			if !gemm16For(supported, tg.dt).decode() {
				missing = append(missing, tg.dt)
			}
		}
		if len(missing) > 0 {
			t.Logf("%d columns: no decode-size sixteen-row %v kernels at level %v", tc.cols, missing, supported)
			continue
		}
		tested++
		for wmode := 0; wmode < 4; wmode++ {
			ws := make([]*tensor.Tensor, len(tc.tgs))
			for i, tg := range tc.tgs {
				data := randBlocks(r, tg.dt, tg.rows*tc.cols/tg.dt.BlockSize(), wmode)
				w, err := tensor.New(fmt.Sprintf("w%d", i), tg.dt, []int{tg.rows, tc.cols}, data)
				if err != nil {
					t.Fatal(err)
				}
				ws[i] = w
			}
			for _, n := range []int{1, 2, 3, 4, 5, 8, 11, qMaxN} {
				x := gemmActs(r, n, tc.cols)
				for th := 1; th <= 2; th++ {
					SetThreads(th)
					outs := make([][]float32, len(ws))
					for i, w := range ws {
						outs[i] = make([]float32, n*w.Rows()+1)
						outs[i][n*w.Rows()] = 42
					}
					var err error
					if len(ws) == 1 {
						err = MatMul(outs[0], x, n, ws[0])
					} else {
						err = MatMulMulti(x, n, outs, ws)
					}
					if err != nil {
						t.Fatal(err)
					}
					for i, w := range ws {
						name := fmt.Sprintf("%s %dx%d (target %d of %d) wmode=%d n=%d threads=%d",
							w.DType, w.Rows(), tc.cols, i, len(ws), wmode, n, th)
						checkGenericDots(t, name, w, x, n, outs[i])
					}
				}
			}
		}
	}
	if tested == 0 {
		t.Skipf("no decode-size sixteen-row kernels on this CPU (level %v)", supported)
	}
}

// checkGenericDots checks out (n × rows, then a 42 sentinel) against ggml's
// generic dot of each row of w with each token of x, bit for bit.
func checkGenericDots(t *testing.T, name string, w *tensor.Tensor, x []float32, n int, out []float32) {
	t.Helper()
	gt, _ := ggml.Lookup(w.DType)
	rows, cols := w.Rows(), w.Cols()
	rb, _ := w.DType.RowBytes(cols)
	j := new(qJob)
	j.setup([][]float32{make([]float32, n*rows)}, x, n, []*tensor.Tensor{w})
	for tk := 0; tk < n; tk++ {
		for i := 0; i < rows; i++ {
			want := gt.Dot(w.Data[i*rb:(i+1)*rb], &j.acts[tk])
			if got := out[tk*rows+i]; math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
				t.Fatalf("%s: row %d token %d = %g, generic dot %g", name, i, tk, got, want)
			}
		}
	}
	if out[n*rows] != 42 {
		t.Fatalf("%s: wrote past n*rows", name)
	}
}
