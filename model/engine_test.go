package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/tensor"
)

// q8Cache is a test stand-in for a compressed KV cache: keys and values
// are stored as int8 with one scale per position and KV head, and each
// Scores or WeightedSum call dequantizes the head it reads into the
// scratch it is handed (reused from call to call, never allocated).
type q8Cache struct {
	cap, hd int
	kvDim   []int
	lens    []int
	k, v    [][]int8
	ks, vs  [][]float32 // scale per position × head
	failAt  int         // Scores fails once this many positions are held (0: never)
}

func newQ8Cache(cfg *Config, positions int) *q8Cache {
	c := &q8Cache{cap: positions, hd: cfg.HeadDim}
	for i := 0; i < cfg.NLayers; i++ {
		d := cfg.KVDim(i)
		c.kvDim = append(c.kvDim, d)
		c.lens = append(c.lens, 0)
		c.k, c.v = append(c.k, make([]int8, positions*d)), append(c.v, make([]int8, positions*d))
		h := d / cfg.HeadDim
		c.ks, c.vs = append(c.ks, make([]float32, positions*h)), append(c.vs, make([]float32, positions*h))
	}
	return c
}

func quant8(dst []int8, scales []float32, src []float32, hd int) {
	for h := range scales {
		x := src[h*hd : (h+1)*hd]
		var amax float32
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		s := amax / 127
		scales[h] = s
		for i, v := range x {
			if s != 0 {
				dst[h*hd+i] = int8(math.Round(float64(v / s)))
			} else {
				dst[h*hd+i] = 0
			}
		}
	}
}

func (c *q8Cache) Append(layer int, k, v []float32) error {
	d, pos := c.kvDim[layer], c.lens[layer]
	if pos >= c.cap {
		return fmt.Errorf("q8 cache full at %d", pos)
	}
	if len(k) != d || len(v) != d {
		return fmt.Errorf("q8 cache: width %d, want %d", len(k), d)
	}
	h := d / c.hd
	quant8(c.k[layer][pos*d:(pos+1)*d], c.ks[layer][pos*h:(pos+1)*h], k, c.hd)
	quant8(c.v[layer][pos*d:(pos+1)*d], c.vs[layer][pos*h:(pos+1)*h], v, c.hd)
	c.lens[layer]++
	return nil
}

// dequant writes positions [0, n) of one head of q into scratch (n × hd).
func (c *q8Cache) dequant(q []int8, scales []float32, layer, head, n int, scratch []float32) ([]float32, error) {
	if n > c.lens[layer] || len(scratch) < n*c.hd {
		return nil, fmt.Errorf("q8 cache: %d positions of %d, scratch %d", n, c.lens[layer], len(scratch))
	}
	d, h := c.kvDim[layer], c.kvDim[layer]/c.hd
	for p := 0; p < n; p++ {
		s := scales[p*h+head]
		src := q[p*d+head*c.hd : p*d+(head+1)*c.hd]
		dst := scratch[p*c.hd : (p+1)*c.hd]
		for i, v := range src {
			dst[i] = float32(v) * s
		}
	}
	return scratch[:n*c.hd], nil
}

func (c *q8Cache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
	if c.failAt > 0 && n >= c.failAt {
		return errors.New("q8 cache: injected failure")
	}
	keys, err := c.dequant(c.k[layer], c.ks[layer], layer, head, n, scratch)
	if err != nil {
		return err
	}
	kernel.Scores(dst, ds, q, qs, nq, keys, c.hd, n, c.hd, scale)
	return nil
}

func (c *q8Cache) WeightedSum(layer, head int, w, dst []float32, scratch []float32) error {
	vals, err := c.dequant(c.v[layer], c.vs[layer], layer, head, len(w), scratch)
	if err != nil {
		return err
	}
	kernel.WeightedSum(dst, w, vals, c.hd)
	return nil
}

func (c *q8Cache) Truncate(n int) error {
	if n < 0 || n > c.Len() {
		return fmt.Errorf("q8 cache: truncate to %d of %d", n, c.Len())
	}
	for i := range c.lens {
		c.lens[i] = min(c.lens[i], n)
	}
	return nil
}

func (c *q8Cache) Len() int {
	n := c.lens[0]
	for _, l := range c.lens {
		n = min(n, l)
	}
	return n
}

func (c *q8Cache) Cap() int         { return c.cap }
func (c *q8Cache) ScratchSize() int { return c.cap * c.hd }
func (c *q8Cache) Bytes() int64 {
	var n int64
	for i := range c.k {
		n += int64(len(c.k[i])+len(c.v[i])) + 4*int64(len(c.ks[i])+len(c.vs[i]))
	}
	return n
}

var engineCfg = Config{Arch: "llama", Dim: 48, NLayers: 3, NHeads: 6, NKVHeads: 2, HeadDim: 8, FFNDim: 40,
	VocabSize: 37, MaxSeqLen: 64, NormEps: 1e-5, RopeTheta: 10000, BOS: 1, EOS: 2,
	Layers: []LayerShape{{}, {NHeads: 4, NKVHeads: 4, FFNDim: 24}, {}}}

// twoSeqRun feeds two sequences through one engine: an interleaved prefill
// of both, then decode steps of both in one batch. It returns, per
// sequence, the logits of every token in order.
func twoSeqRun(t *testing.T, m *Model, caches [2]KVCache, tokens [2][]int, prefill [2]int) [2][][]float32 {
	t.Helper()
	V := m.Config.VocabSize
	e := m.NewEngine(32, 8)
	for i, c := range caches {
		if _, err := e.AddSeq(10+i, c); err != nil {
			t.Fatal(err)
		}
	}
	var got [2][][]float32
	var b Batch
	// Prefill, interleaved: a0 b0 b1 a1 a2 b2 ...
	next := [2]int{}
	for next[0] < prefill[0] || next[1] < prefill[1] {
		for s := 0; s < 2; s++ {
			for k := 0; k < 1+s && next[s] < prefill[s]; k++ {
				b.Tokens = append(b.Tokens, tokens[s][next[s]])
				b.Seqs = append(b.Seqs, 10+s)
				b.Pos = append(b.Pos, next[s])
				next[s]++
			}
		}
	}
	out := make([]float32, len(b.Tokens)*V)
	if err := e.Forward(context.Background(), b, out); err != nil {
		t.Fatal(err)
	}
	for i, id := range b.Seqs {
		got[id-10] = append(got[id-10], out[i*V:(i+1)*V])
	}
	// Decode both, one batch per step.
	for next[0] < len(tokens[0]) || next[1] < len(tokens[1]) {
		b = Batch{}
		for s := 0; s < 2; s++ {
			if next[s] < len(tokens[s]) {
				b.Tokens = append(b.Tokens, tokens[s][next[s]])
				b.Seqs = append(b.Seqs, 10+s)
				b.Pos = append(b.Pos, next[s])
				next[s]++
			}
		}
		out := make([]float32, len(b.Tokens)*V)
		if err := e.Forward(context.Background(), b, out); err != nil {
			t.Fatal(err)
		}
		for i, id := range b.Seqs {
			got[id-10] = append(got[id-10], out[i*V:(i+1)*V])
		}
	}
	for s := 0; s < 2; s++ {
		if n := e.Seq(10 + s).Len(); n != len(tokens[s]) {
			t.Fatalf("sequence %d holds %d positions, want %d", s, n, len(tokens[s]))
		}
	}
	return got
}

func TestEngineTwoSequences(t *testing.T) {
	// Several pool participants, so that heads run concurrently (under
	// -race this checks the caches' concurrent-heads contract).
	defer kernel.SetThreads(kernel.Threads())
	kernel.SetThreads(4)
	m, w := randomModel(t, engineCfg, tensor.F16, 11)
	tokens := [2][]int{{1, 5, 9, 33, 2, 0, 36, 17, 17, 4, 22}, {1, 30, 3, 3, 8, 12, 19, 25, 6}}
	prefill := [2]int{5, 6}
	cfg := &m.Config
	check := func(what string, got [2][][]float32, tol float64) {
		for s := 0; s < 2; s++ {
			want := refForward(*cfg, w, tokens[s])
			for r, row := range got[s] {
				for j, g := range row {
					if d := math.Abs(float64(g) - want[r][j]); d > tol*(1+math.Abs(want[r][j])) {
						t.Fatalf("%s: sequence %d position %d logit %d = %v, reference %v", what, s, r, j, g, want[r][j])
					}
				}
			}
		}
	}
	float := twoSeqRun(t, m, [2]KVCache{m.NewCache(32), m.NewCache(16)}, tokens, prefill)
	check("float caches", float, 2e-4)
	q8 := twoSeqRun(t, m, [2]KVCache{newQ8Cache(cfg, 32), newQ8Cache(cfg, 16)}, tokens, prefill)
	check("q8 stand-in", q8, 5e-2)

}

func TestEngineCancelAndSeek(t *testing.T) {
	m, w := randomModel(t, engineCfg, tensor.F32, 12)
	tokens := []int{1, 5, 9, 33, 2, 0, 36, 17}
	want := refForward(m.Config, w, tokens)
	V := m.Config.VocabSize
	st := m.NewState(16, 4)
	out := make([]float32, V)
	if err := st.Forward(tokens[:3], out, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.ForwardContext(ctx, tokens[3:], out, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled forward: %v", err)
	}
	if st.Pos() != 3 {
		t.Fatalf("cancelled forward left %d positions, want 3", st.Pos())
	}
	// Run past the end, then seek back and continue: the cached prefix is reused.
	if err := st.Forward([]int{7, 7, 7}, out, false); err != nil {
		t.Fatal(err)
	}
	if err := st.Seek(3); err != nil {
		t.Fatal(err)
	}
	if err := st.Seek(9); err == nil {
		t.Fatal("seek past the end: no error")
	}
	all := make([]float32, (len(tokens)-3)*V)
	if err := st.Forward(tokens[3:], all, true); err != nil {
		t.Fatal(err)
	}
	for r := 3; r < len(tokens); r++ {
		for j := 0; j < V; j++ {
			g, wv := float64(all[(r-3)*V+j]), want[r][j]
			if math.Abs(g-wv) > 2e-4*(1+math.Abs(wv)) {
				t.Fatalf("after seek: position %d logit %d = %v, reference %v", r, j, g, wv)
			}
		}
	}
}

func TestEngineErrors(t *testing.T) {
	m, _ := randomModel(t, engineCfg, tensor.F32, 13)
	V := m.Config.VocabSize
	out := make([]float32, 8*V)
	bad := newQ8Cache(&m.Config, 8)
	bad.failAt = 2
	tests := []struct {
		name string
		b    Batch
	}{
		{"empty", Batch{}},
		{"lengths differ", Batch{Tokens: []int{1, 2}, Seqs: []int{0}, Pos: []int{0, 1}}},
		{"unknown sequence", Batch{Tokens: []int{1}, Seqs: []int{5}, Pos: []int{0}}},
		{"skipped position", Batch{Tokens: []int{1}, Seqs: []int{0}, Pos: []int{1}}},
		{"repeated position", Batch{Tokens: []int{1, 2}, Seqs: []int{0, 0}, Pos: []int{0, 0}}},
		{"past the cache", Batch{Tokens: []int{1, 2, 3, 4, 5}, Seqs: []int{1, 1, 1, 1, 1}, Pos: []int{0, 1, 2, 3, 4}}},
		{"out of vocabulary", Batch{Tokens: []int{V}, Seqs: []int{0}, Pos: []int{0}}},
		{"cache error", Batch{Tokens: []int{1, 2, 3}, Seqs: []int{2, 2, 2}, Pos: []int{0, 1, 2}}},
		{"short logits", Batch{Tokens: make([]int, 9), Seqs: make([]int, 9), Pos: []int{0, 1, 2, 3, 4, 5, 6, 7, 8}}},
	}
	for _, tc := range tests {
		e := m.NewEngine(16, 4)
		e.AddSeq(0, nil)
		e.AddSeq(1, m.NewCache(4))
		e.AddSeq(2, bad)
		if _, err := e.AddSeq(0, nil); err == nil {
			t.Fatal("duplicate sequence: no error")
		}
		if err := e.Forward(context.Background(), tc.b, out); err == nil {
			t.Errorf("%s: no error", tc.name)
		} else if s := e.Seq(0); s.Len() != 0 || bad.Len() != 0 {
			t.Errorf("%s: failed batch left %d and %d positions", tc.name, s.Len(), bad.Len())
		}
	}
	if err := m.NewCache(2).Append(0, make([]float32, 3), make([]float32, 3)); err == nil {
		t.Error("append of the wrong width: no error")
	}
}

// Engines over one model may run on several goroutines at once, through
// any Linear (here a low-rank adapter that keeps scratch).
func TestEnginesShareAModel(t *testing.T) {
	m, w := randomModel(t, engineCfg, tensor.F32, 14)
	for li := range m.Weights.Layers {
		l := &m.Weights.Layers[li]
		var err error
		if l.Up, err = NewLowRank(l.Up, 2, make([]float32, 2*l.Up.Cols()), make([]float32, 2*l.Up.Rows())); err != nil {
			t.Fatal(err)
		}
	}
	tokens := []int{1, 5, 9, 33, 2, 0, 36}
	want := refForward(m.Config, w, tokens)
	V := m.Config.VocabSize
	errs := make(chan error, 3)
	for g := 0; g < 3; g++ {
		go func() {
			st := m.NewState(16, 1+g)
			out := make([]float32, len(tokens)*V)
			if err := st.Forward(tokens, out, true); err != nil {
				errs <- err
				return
			}
			for r := range tokens {
				for j := 0; j < V; j++ {
					if d := math.Abs(float64(out[r*V+j]) - want[r][j]); d > 2e-4*(1+math.Abs(want[r][j])) {
						errs <- fmt.Errorf("goroutine %d: position %d logit %d = %v, reference %v", g, r, j, out[r*V+j], want[r][j])
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
