package calib

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
)

// tinyModel builds a random two-layer model with float32 weights.
func tinyModel(t *testing.T, seed uint64) *model.Model {
	t.Helper()
	return tinyModelN(t, seed, 2)
}

// tinyModelN builds a random model of layers layers with grouped-query
// attention (4 heads, 2 KV heads) and float32 weights.
func tinyModelN(t *testing.T, seed uint64, layers int) *model.Model {
	t.Helper()
	cfg := model.Config{
		Arch: "llama", Dim: 32, NLayers: layers, NHeads: 4, NKVHeads: 2, HeadDim: 8,
		FFNDim: 48, VocabSize: 64, MaxSeqLen: 64, NormEps: 1e-5, RopeTheta: 10000,
		BOS: 1, EOS: 2,
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	ts := map[string]*tensor.Tensor{}
	add := func(name string, shape []int, scale, offset float64) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(offset + scale*(2*rng.Float64()-1))
		}
		ts[name] = tensor.FromFloat32(name, shape, v)
	}
	q, kv := cfg.NHeads*cfg.HeadDim, cfg.NKVHeads*cfg.HeadDim
	add("token_embd.weight", []int{cfg.VocabSize, cfg.Dim}, 1, 0)
	add("output_norm.weight", []int{cfg.Dim}, 0.2, 1)
	add("output.weight", []int{cfg.VocabSize, cfg.Dim}, 0.3, 0)
	for l := 0; l < cfg.NLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", []int{cfg.Dim}, 0.2, 1)
		add(p+"ffn_norm.weight", []int{cfg.Dim}, 0.2, 1)
		add(p+"attn_q.weight", []int{q, cfg.Dim}, 0.3, 0)
		add(p+"attn_k.weight", []int{kv, cfg.Dim}, 0.3, 0)
		add(p+"attn_v.weight", []int{kv, cfg.Dim}, 0.3, 0)
		add(p+"attn_output.weight", []int{cfg.Dim, q}, 0.3, 0)
		add(p+"ffn_gate.weight", []int{cfg.FFNDim, cfg.Dim}, 0.3, 0)
		add(p+"ffn_up.weight", []int{cfg.FFNDim, cfg.Dim}, 0.3, 0)
		add(p+"ffn_down.weight", []int{cfg.Dim, cfg.FFNDim}, 0.3, 0)
	}
	m, err := model.Load(cfg, func(name string) (*tensor.Tensor, bool, error) {
		tt, ok := ts[name]
		return tt, ok, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// recorder keeps a float64 copy of every input row, per tensor.
type recorder struct {
	rows map[string][][]float64
	cols map[string]int
}

func (r *recorder) Observe(name string, x []float32, n int) {
	if r.rows == nil {
		r.rows, r.cols = map[string][][]float64{}, map[string]int{}
	}
	c := len(x) / n
	r.cols[name] = c
	for t := 0; t < n; t++ {
		row := make([]float64, c)
		for j := range row {
			row[j] = float64(x[t*c+j])
		}
		r.rows[name] = append(r.rows[name], row)
	}
}

type tee []model.Observer

func (o tee) Observe(name string, x []float32, n int) {
	for _, ob := range o {
		ob.Observe(name, x, n)
	}
}

func randomTokens(rng *rand.Rand, n, vocab int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = rng.IntN(vocab)
	}
	return out
}

func TestCollectorMatchesBruteForce(t *testing.T) {
	m := tinyModel(t, 3)
	rng := rand.New(rand.NewPCG(9, 9))
	tokens := randomTokens(rng, 3*20+7, m.Config.VocabSize)
	c := &Collector{Hessians: func(string) bool { return true }}
	var rec recorder
	chunks := 0
	if err := Run(m, tokens, 20, tee{c, &rec}, func(done, total int) { chunks = done }); err != nil {
		t.Fatal(err)
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if chunks != 3 {
		t.Fatalf("progress saw %d chunks, want 3", chunks)
	}
	names := c.Names()
	if len(names) != 2*7+1 {
		t.Fatalf("collected %d tensors: %v", len(names), names)
	}
	for _, name := range names {
		rows := rec.rows[name]
		cols := rec.cols[name]
		if got := c.Rows(name); got != int64(len(rows)) || got != 60 {
			t.Fatalf("%s: %d rows, recorded %d", name, got, len(rows))
		}
		sum := make([]float64, cols)
		hess := make([]float64, cols*cols)
		for _, r := range rows {
			for i, a := range r {
				sum[i] += a * a
				for j, b := range r {
					hess[i*cols+j] += a * b
				}
			}
		}
		if d := maxRelDiff(c.SumSquares(name), sum); d > 1e-12 {
			t.Errorf("%s: Σx² off by %g (relative)", name, d)
		}
		h, n := c.Hessian(name)
		if n != len(rows) {
			t.Errorf("%s: Hessian over %d rows, want %d", name, n, len(rows))
		}
		if d := maxRelDiff(h, hess); d > 1e-12 {
			t.Errorf("%s: XᵀX off by %g (relative)", name, d)
		}
		st := c.Stats(name)
		for j := range sum {
			if want := float32(sum[j] / float64(len(rows))); st.Importance[j] != want {
				t.Fatalf("%s: importance[%d] %g, want %g", name, j, st.Importance[j], want)
			}
		}
		if err := st.Check(cols); err != nil {
			t.Error(err)
		}
		// SharedStats: the same statistics, the Hessian bit for bit.
		sh := c.SharedStats(name)
		if !slices.Equal(sh.Importance, st.Importance) || sh.Samples != st.Samples || !slices.Equal(sh.Hessian, st.Hessian) {
			t.Errorf("%s: SharedStats differ from Stats", name)
		}
		if lead := c.SharedStats(c.SharedWith(name)); &lead.Hessian[0] != &sh.Hessian[0] {
			t.Errorf("%s: SharedStats Hessian is not its group's", name)
		}
	}
	for _, c2 := range [][2]string{
		{"blk.1.attn_k.weight", "blk.1.attn_q.weight"},
		{"blk.1.attn_v.weight", "blk.1.attn_q.weight"},
		{"blk.1.ffn_up.weight", "blk.1.ffn_gate.weight"},
		{"blk.1.attn_output.weight", "blk.1.attn_output.weight"},
		{"blk.0.ffn_down.weight", "blk.0.ffn_down.weight"},
		{"output.weight", "output.weight"},
	} {
		if got := c.SharedWith(c2[0]); got != c2[1] {
			t.Errorf("%s shares %q, want %q", c2[0], got, c2[1])
		}
	}
}

func maxRelDiff(got, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var scale, d float64
	for i := range want {
		scale = max(scale, math.Abs(want[i]))
		d = max(d, math.Abs(got[i]-want[i]))
	}
	return d / max(scale, 1e-300)
}

func TestRunPutsBOSFirst(t *testing.T) {
	m := tinyModel(t, 4)
	rng := rand.New(rand.NewPCG(1, 2))
	a := randomTokens(rng, 32, m.Config.VocabSize)
	b := slices.Clone(a)
	a[0], a[16] = 5, 6
	b[0], b[16] = m.Config.BOS, m.Config.BOS
	ca, cb := &Collector{}, &Collector{}
	if err := Run(m, a, 16, ca, nil); err != nil {
		t.Fatal(err)
	}
	if err := Run(m, b, 16, cb, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range ca.Names() {
		if d := maxRelDiff(ca.SumSquares(name), cb.SumSquares(name)); d != 0 {
			t.Errorf("%s: chunk starts not replaced by BOS (diff %g)", name, d)
		}
	}
	if err := Run(m, a[:10], 16, ca, nil); err == nil {
		t.Error("no error for fewer tokens than one chunk")
	}
}

func TestCollectorFilterMinRowsAndIMatrix(t *testing.T) {
	m := tinyModel(t, 5)
	rng := rand.New(rand.NewPCG(3, 4))
	tokens := randomTokens(rng, 3*16, m.Config.VocabSize)
	c := &Collector{Include: BlockTensors, MinRows: 16}
	if err := Run(m, tokens, 16, c, nil); err != nil {
		t.Fatal(err)
	}
	// Single-token products are skipped by MinRows.
	st := m.NewState(4, 1)
	st.Observer = c
	if err := st.Forward([]int{1, 2}, make([]float32, m.Config.VocabSize), false); err != nil {
		t.Fatal(err)
	}
	if c.Importance("output.weight") != nil {
		t.Error("output.weight collected despite Include")
	}
	im, err := c.IMatrix(32, "calib.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Entries) != 14 || !slices.IsSortedFunc(im.Entries, func(a, b Entry) int {
		return cmpString(a.Name, b.Name)
	}) {
		t.Fatalf("%d entries, sorted: want 14 sorted", len(im.Entries))
	}
	// 48 rows in chunks of 32: ncall = 2, last chunk = 1.
	if im.LastChunk != 1 || im.Dataset != "calib.txt" {
		t.Errorf("last chunk %d, dataset %q", im.LastChunk, im.Dataset)
	}
	for _, e := range im.Entries {
		if e.NCall != 2 {
			t.Fatalf("%s: ncall %d, want 2", e.Name, e.NCall)
		}
		imp := c.Importance(e.Name)
		for j, v := range e.Importance() {
			if math.Abs(float64(v-imp[j])) > 1e-6*float64(imp[j]) {
				t.Fatalf("%s[%d]: %g, collector %g", e.Name, j, v, imp[j])
			}
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestCollectorDetectsBrokenSharing(t *testing.T) {
	w1, w2, w3 := "a", "b", "c"
	x := []float32{1, 2, 3, 4, 5, 6}
	y := []float32{1, 2, 3, 4, 5, 6}
	c := &Collector{}
	c.Observe(w1, x, 2)
	c.Observe(w2, x, 2) // joins a
	c.Observe(w3, y, 2)
	c.Observe(w1, x, 2)
	c.Observe(w2, x, 2) // fine
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if c.SharedWith("b") != "a" || c.Rows("b") != 4 {
		t.Fatalf("b shares %q with %d rows", c.SharedWith("b"), c.Rows("b"))
	}
	c.Observe(w3, y, 2)
	c.Observe(w2, y, 2) // b without a, on another input
	if c.Err() == nil {
		t.Fatal("broken sharing not reported")
	}
	if _, err := c.IMatrix(2, ""); err == nil {
		t.Error("IMatrix exported despite the error")
	}
}

func TestAddXtX(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct{ cols, n int }{{1, 1}, {3, 5}, {4, 4}, {7, 3}, {9, 17}, {130, 33}, {257, 64}} {
		xt := make([]float64, tc.cols*tc.n)
		for i := range xt {
			xt[i] = rng.NormFloat64()
		}
		h := make([]float64, tc.cols*tc.cols)
		for i := range h {
			h[i] = 1 // accumulates onto what is there; lower triangle untouched
		}
		addXtX(h, tc.cols, xt, tc.n)
		for i := 0; i < tc.cols; i++ {
			for j := 0; j < tc.cols; j++ {
				want := 1.0
				if j >= i {
					for s := 0; s < tc.n; s++ {
						want += xt[i*tc.n+s] * xt[j*tc.n+s]
					}
				}
				if got := h[i*tc.cols+j]; math.Abs(got-want) > 1e-12*(1+math.Abs(want)) {
					t.Fatalf("cols %d n %d: h[%d][%d] = %g, want %g", tc.cols, tc.n, i, j, got, want)
				}
			}
		}
	}
}

func BenchmarkAddXtX512x1536(b *testing.B) {
	const n, cols = 512, 1536
	xt := make([]float64, n*cols)
	for i := range xt {
		xt[i] = float64(i%7) - 3
	}
	h := make([]float64, cols*cols)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		addXtX(h, cols, xt, n)
	}
	b.ReportMetric(float64(cols)*float64(cols+1)/2*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFMA/s")
}

// The float32 SIMD path for large updates agrees with the exact float64 one
// to float32 accuracy.
func TestHessianFastPath(t *testing.T) {
	const cols, n = 96, 700
	x := make([]float32, n*cols)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37)) * float32(1+i%7)
	}
	c := &Collector{}
	slow := &group{cols: cols, hess: make([]float64, cols*cols)}
	fast := &group{cols: cols, hess: make([]float64, cols*cols)}
	xt := make([]float64, n*cols)
	for tk := 0; tk < n; tk++ {
		for j := 0; j < cols; j++ {
			xt[j*n+tk] = float64(x[tk*cols+j])
		}
	}
	addXtX(slow.hess, cols, xt, n)
	c.addHessianF32(fast, x, n)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < cols; i++ {
		for j := i; j < cols; j++ {
			want, got := slow.hess[i*cols+j], fast.hess[i*cols+j]
			scale := math.Sqrt(slow.hess[i*cols+i] * slow.hess[j*cols+j])
			if math.Abs(got-want) > 1e-5*scale {
				t.Fatalf("H[%d,%d] = %g, exact %g", i, j, got, want)
			}
		}
	}
}

// fullHessianF32 is the reference for addHessianF32: one whole cols×cols
// float32 product XᵀX (the same engine kernel), upper triangle added.
func fullHessianF32(t *testing.T, h []float64, x []float32, n, cols int) {
	t.Helper()
	xt := make([]float32, n*cols)
	for tk := 0; tk < n; tk++ {
		for j := 0; j < cols; j++ {
			xt[j*n+tk] = x[tk*cols+j]
		}
	}
	h32 := make([]float32, cols*cols)
	w := &tensor.Tensor{Name: "ref", DType: tensor.F32, Shape: []int{cols, n},
		Data: unsafe.Slice((*byte)(unsafe.Pointer(&xt[0])), 4*len(xt))}
	if err := kernel.MatMul(h32, xt, cols, w); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < cols; i++ {
		for j := i; j < cols; j++ {
			h[i*cols+j] += float64(h32[i*cols+j])
		}
	}
}

// The banded upper-triangle products of addHessianF32 give bit for bit
// the sums of one whole product, at every kernel level, for widths below,
// at and across band edges, token counts off every tile size and past the
// kernel's k-block, and adversarial values (zeros, float16-range extremes,
// tiny values).
func TestHessianBandsMatchWholeProduct(t *testing.T) {
	saved := kernel.CurrentConfig()
	defer func() {
		if err := kernel.Configure(saved); err != nil {
			t.Fatal(err)
		}
	}()
	cases := []struct {
		name    string
		cols, n int
		fill    func(i int) float32
	}{
		{"random", 3*hessianBand + 37, 513, nil},
		{"one band", hessianBand, 96, nil},
		{"narrow", 20, 33, nil},
		{"past k-block", hessianBand + 5, 2100, nil},
		{"zeros", hessianBand + 17, 64, func(int) float32 { return 0 }},
		{"extremes", hessianBand + 3, 40, func(i int) float32 {
			return []float32{65504, -65504, 0, 6e-8, -1}[i%5]
		}},
	}
	for _, lvl := range []string{"generic", "avx2", "avx512"} {
		cfg := saved
		cfg.Level = lvl
		if err := kernel.Configure(cfg); err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases {
			if testing.Short() && tc.n > 1000 {
				continue
			}
			x := make([]float32, tc.n*tc.cols)
			r := rand.New(rand.NewPCG(uint64(tc.cols), uint64(tc.n)))
			for i := range x {
				if tc.fill != nil {
					x[i] = tc.fill(i)
				} else {
					x[i] = float32(r.NormFloat64())
				}
			}
			want := make([]float64, tc.cols*tc.cols)
			fullHessianF32(t, want, x, tc.n, tc.cols)
			c := &Collector{}
			g := &group{cols: tc.cols, hess: make([]float64, tc.cols*tc.cols)}
			c.addHessianF32(g, x, tc.n)
			c.addHessianF32(g, x, tc.n) // twice: sums, and scratch reuse
			fullHessianF32(t, want, x, tc.n, tc.cols)
			if err := c.Err(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tc.cols; i++ {
				for j := 0; j < tc.cols; j++ {
					got, w := g.hess[i*tc.cols+j], want[i*tc.cols+j]
					if math.Float64bits(got) != math.Float64bits(w) {
						t.Fatalf("%s, %s (%s): H[%d,%d] = %g, whole product %g", lvl, tc.name, kernel.Kernel(), i, j, got, w)
					}
				}
			}
		}
	}
}
