package calib

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/terse-llm/terse/bundled"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// stats is what one tensor's collection gave.
type stats struct {
	shared string
	rows   int64
	sumSq  []float64
	hess   []float64
	n      int
}

func snapshot(c *Collector, into map[string]stats) {
	for _, name := range c.Names() {
		h, n := c.Hessian(name)
		into[name] = stats{shared: c.SharedWith(name), rows: c.Rows(name), sumSq: c.SumSquares(name), hess: h, n: n}
	}
}

// layerwiseStats runs RunLayerwise and snapshots every stage, checking
// that each stage's collector holds only that stage's tensors.
func layerwiseStats(t *testing.T, m *model.Model, tokens []int, n int, opt LayerwiseOptions) map[string]stats {
	t.Helper()
	got := map[string]stats{}
	done := opt.Done
	opt.Collector = func(int) *Collector { return &Collector{Hessians: func(string) bool { return true }} }
	opt.Done = func(ctx context.Context, stage int, c *Collector) ([]model.Linear, error) {
		sel := stageTensor(m, stage)
		for _, name := range c.Names() {
			if !sel(name) {
				t.Errorf("stage %d collected %s", stage, name)
			}
		}
		snapshot(c, got)
		if done != nil {
			return done(ctx, stage, c)
		}
		return nil, nil
	}
	if err := RunLayerwise(context.Background(), m, tokens, n, opt); err != nil {
		t.Fatal(err)
	}
	return got
}

func wholeStats(t *testing.T, m *model.Model, tokens []int, n int) map[string]stats {
	t.Helper()
	c := &Collector{Hessians: func(string) bool { return true }}
	if err := Run(m, tokens, n, c, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]stats{}
	snapshot(c, want)
	return want
}

func compareStats(t *testing.T, got, want map[string]stats, tol float64, only func(string) bool) {
	t.Helper()
	checked := 0
	for name, w := range want {
		if only != nil && !only(name) {
			continue
		}
		checked++
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: not collected layer by layer", name)
			continue
		case g.shared != w.shared || g.rows != w.rows || g.n != w.n:
			t.Errorf("%s: shares %q over %d rows (Hessian %d), want %q over %d (%d)", name, g.shared, g.rows, g.n, w.shared, w.rows, w.n)
		}
		if d := maxRelDiff(g.sumSq, w.sumSq); d > tol {
			t.Errorf("%s: Σx² off by %g (relative)", name, d)
		}
		if d := maxRelDiff(g.hess, w.hess); d > tol {
			t.Errorf("%s: XᵀX off by %g (relative)", name, d)
		}
	}
	if checked == 0 {
		t.Fatal("nothing compared")
	}
	if only == nil && len(got) != len(want) {
		t.Errorf("layer by layer collected %d tensors, the whole model %d", len(got), len(want))
	}
}

func openStories(t *testing.T) *model.Model {
	t.Helper()
	mp, tp, _, err := bundled.Extract()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := load.Open(mp, load.Options{Tokenizer: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck.Model
}

// In the default mode every statistic equals the whole-model Run's bit for
// bit: the same products over the same inputs, summed in the same order.
func TestRunLayerwiseMatchesRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		m      func(t *testing.T) *model.Model
		chunks int
		ctx    int
	}{
		{"random-gqa-3-layers", func(t *testing.T) *model.Model { return tinyModelN(t, 11, 3) }, 4, 24},
		// 128-token chunks over a 64-wide model take the float32 Hessian path.
		{"stories260K", openStories, 3, 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m(t)
			rng := rand.New(rand.NewPCG(5, 6))
			tokens := randomTokens(rng, tc.chunks*tc.ctx+5, m.Config.VocabSize)
			want := wholeStats(t, m, tokens, tc.ctx)
			var calls, total int
			got := layerwiseStats(t, m, tokens, tc.ctx, LayerwiseOptions{Progress: func(d, tot int) { calls, total = d, tot }})
			compareStats(t, got, want, 0, nil)
			if wantN := (m.Config.NLayers + 1) * tc.chunks; calls != wantN || total != wantN {
				t.Errorf("progress ended at %d of %d, want %d of %d", calls, total, wantN, wantN)
			}
		})
	}
}

// In sequential mode block i sees the outputs of the blocks before it as
// Done replaced them: the same as Run over a model built with those
// replacements, for the blocks after; and replacements equal to the
// originals change nothing. m itself is never modified.
func TestRunLayerwiseSequential(t *testing.T) {
	m := tinyModelN(t, 12, 3)
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 20
	tokens := randomTokens(rng, 3*n, m.Config.VocabSize)
	orig := slices.Clone(m.Weights.Layers)

	// Identity replacements: the default mode's statistics.
	same := func(_ context.Context, stage int, _ *Collector) ([]model.Linear, error) {
		if stage == m.Config.NLayers {
			return nil, nil
		}
		l := m.Weights.Layers[stage]
		var out []model.Linear
		for _, p := range []model.Linear{l.Wq, l.Wk, l.Wv, l.Wo, l.Gate, l.Up, l.Down} {
			w, _ := model.DenseTensor(p)
			out = append(out, model.NewDense(w))
		}
		return out, nil
	}
	var total int
	got := layerwiseStats(t, m, tokens, n, LayerwiseOptions{Sequential: true, Done: same, Progress: func(_, tot int) { total = tot }})
	compareStats(t, got, wholeStats(t, m, tokens, n), 1e-12, nil)
	if want := (2*m.Config.NLayers + 1) * 3; total != want {
		t.Errorf("progress total %d, want %d", total, want)
	}

	// Perturbed replacements: block 0's and 1's down and output
	// projections scaled (a stand-in for their quantized values).
	scaled := map[string]*tensor.Tensor{}
	perturb := func(_ context.Context, stage int, _ *Collector) ([]model.Linear, error) {
		if stage > 1 {
			return nil, nil
		}
		l := m.Weights.Layers[stage]
		var out []model.Linear
		for _, p := range []model.Linear{l.Wo, l.Down} {
			w, _ := model.DenseTensor(p)
			v, err := ggml.DequantizeTensor(w)
			if err != nil {
				return nil, err
			}
			for i := range v {
				v[i] *= 0.5 + float32(i%7)/7
			}
			nt := tensor.FromFloat32(w.Name, w.Shape, v)
			scaled[w.Name] = nt
			out = append(out, model.NewDense(nt))
		}
		return out, nil
	}
	got = layerwiseStats(t, m, tokens, n, LayerwiseOptions{Sequential: true, Done: perturb})
	for i := range orig {
		a, b := orig[i], m.Weights.Layers[i]
		if a.Wq != b.Wq || a.Wk != b.Wk || a.Wv != b.Wv || a.Wo != b.Wo || a.Gate != b.Gate || a.Up != b.Up || a.Down != b.Down {
			t.Fatalf("layer %d of the model was modified", i)
		}
	}
	// Reference: the whole model with the replacements, run in one piece.
	w := *m.Weights
	w.Layers = slices.Clone(m.Weights.Layers)
	for i := 0; i < 2; i++ {
		w.Layers[i].Wo = model.NewDense(scaled[w.Layers[i].Wo.Name()])
		w.Layers[i].Down = model.NewDense(scaled[w.Layers[i].Down.Name()])
	}
	ref, err := model.New(m.Config, &w)
	if err != nil {
		t.Fatal(err)
	}
	want := wholeStats(t, ref, tokens, n)
	// Block 0 is observed with its original weights over the embeddings;
	// block 1 with its original weights over compressed block 0's output
	// (the reference's block 1 inputs up to its attention output); block 2
	// and the head over the compressed blocks 0 and 1: the reference's.
	compareStats(t, got, want, 1e-12, func(name string) bool {
		return strings.HasPrefix(name, "blk.2.") || name == "output.weight" ||
			name == "blk.1.attn_q.weight" || name == "blk.1.attn_k.weight" || name == "blk.1.attn_v.weight" || name == "blk.1.attn_output.weight"
	})
	compareStats(t, got, wholeStats(t, m, tokens, n), 1e-12, func(name string) bool { return strings.HasPrefix(name, "blk.0.") })
	if d := maxRelDiff(got["blk.1.ffn_down.weight"].sumSq, want["blk.1.ffn_down.weight"].sumSq); d == 0 {
		t.Error("block 1's ffn_down saw its replaced self: the block was observed after the swap")
	}
}

// The bound layer-by-layer calibration exists for: at no point are the
// Hessians of more than one block alive.
func TestRunLayerwiseHessianBound(t *testing.T) {
	m := tinyModelN(t, 13, 5)
	cfg := &m.Config
	rng := rand.New(rand.NewPCG(9, 10))
	tokens := randomTokens(rng, 3*16, cfg.VocabSize)
	// One block's distinct inputs: the normed input (q, k, v), the
	// attention output, the normed input (gate, up), the FFN activation.
	var bound int64
	for i := 0; i < cfg.NLayers; i++ {
		d, q, f := int64(cfg.Dim), int64(cfg.QDim(i)), int64(cfg.Layer(i).FFNDim)
		bound = max(bound, 8*(d*d+q*q+d*d+f*f))
	}
	bound = max(bound, 8*int64(cfg.Dim)*int64(cfg.Dim)) // the head
	for _, seq := range []bool{false, true} {
		var cols []*Collector
		live := func() int64 {
			var n int64
			for _, c := range cols {
				n += c.HessianBytes()
			}
			return n
		}
		var peak int64
		err := RunLayerwise(context.Background(), m, tokens, 16, LayerwiseOptions{
			Sequential: seq,
			Collector: func(int) *Collector {
				c := &Collector{Hessians: func(string) bool { return true }}
				cols = append(cols, c)
				return c
			},
			Done: func(_ context.Context, stage int, c *Collector) ([]model.Linear, error) {
				peak = max(peak, live())
				if stage < cfg.NLayers && c.HessianBytes() != bound {
					t.Errorf("block %d holds %d bytes of Hessians, want %d", stage, c.HessianBytes(), bound)
				}
				return nil, nil
			},
			Progress: func(int, int) { peak = max(peak, live()) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(cols) != cfg.NLayers+1 {
			t.Fatalf("%d collectors for %d stages", len(cols), cfg.NLayers+1)
		}
		if peak > bound || peak == 0 {
			t.Errorf("sequential %v: %d bytes of Hessians alive at once, one block is %d", seq, peak, bound)
		}
		if n := live(); n != 0 {
			t.Errorf("sequential %v: %d bytes of Hessians left after the run", seq, n)
		}
	}
}

func TestRunLayerwiseRejectsAndStops(t *testing.T) {
	m := tinyModelN(t, 14, 2)
	rng := rand.New(rand.NewPCG(1, 1))
	tokens := randomTokens(rng, 40, m.Config.VocabSize)
	ctx := context.Background()
	stop := errors.New("Done failed")
	cancelled, cancel := context.WithCancel(ctx)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		n    int
		opt  LayerwiseOptions
		want string
		is   error
	}{
		{"zero context", ctx, 0, LayerwiseOptions{}, "context 0", nil},
		{"short text", ctx, 64, LayerwiseOptions{}, "do not fill one chunk", nil},
		{"done fails", ctx, 10, LayerwiseOptions{Done: func(context.Context, int, *Collector) ([]model.Linear, error) { return nil, stop }}, "Done failed", stop},
		{"cancelled in Done", cancelled, 10, LayerwiseOptions{Done: func(context.Context, int, *Collector) ([]model.Linear, error) {
			cancel()
			return nil, nil
		}}, "stopped at block 1 of 2", context.Canceled},
		{"foreign replacement", ctx, 10, LayerwiseOptions{Sequential: true, Done: func(_ context.Context, stage int, _ *Collector) ([]model.Linear, error) {
			return []model.Linear{m.Weights.Output}, nil
		}}, "not a projection of this block", nil},
		{"bad token", ctx, 10, LayerwiseOptions{}, "outside the vocabulary", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks := tokens
			if tc.name == "bad token" {
				toks = slices.Clone(tokens)
				toks[3] = m.Config.VocabSize + 4
			}
			err := RunLayerwise(tc.ctx, m, toks, tc.n, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
}
