package model

import (
	"context"
	"errors"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// countObserver counts the rows it sees per projection.
type countObserver map[string]int

func (c countObserver) Observe(name string, x []float32, n int) { c[name] += n }

func TestBlockRunnerMatchesForward(t *testing.T) {
	tokens := []int{1, 5, 9, 33, 2, 0, 36, 17, 17, 4, 22}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
		cfg := engineCfg
		cfg.AttnBias = dt == tensor.F16
		m, _ := randomModel(t, cfg, dt, 21)
		n, V := len(tokens), cfg.VocabSize
		want := make([]float32, n*V)
		if err := m.NewState(n, n).Forward(tokens, want, true); err != nil {
			t.Fatal(err)
		}
		x := make([]float32, n*cfg.Dim)
		if err := m.Embed(tokens, x); err != nil {
			t.Fatal(err)
		}
		r := m.NewBlockRunner(16)
		obs := countObserver{}
		for li := 0; li < cfg.NLayers; li++ {
			if err := r.Run(context.Background(), li, x, n, obs); err != nil {
				t.Fatal(err)
			}
		}
		got := make([]float32, n*V)
		if err := r.Head(x, n, got, obs); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: logit %d: blocks give %v, Forward %v", dt, i, got[i], want[i])
			}
		}
		if len(obs) != 7*cfg.NLayers+1 || obs["blk.1.ffn_down.weight"] != n || obs["output.weight"] != n {
			t.Errorf("%s: observed %v", dt, obs)
		}
	}
}

func TestBlockRunnerErrors(t *testing.T) {
	m, _ := randomModel(t, engineCfg, tensor.F32, 22)
	r := m.NewBlockRunner(4)
	x := make([]float32, 8*m.Config.Dim)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx, 0, x, 2, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	for _, tc := range []struct {
		name     string
		layer, n int
	}{{"layer", 3, 2}, {"negative layer", -1, 2}, {"too many tokens", 0, 5}, {"no tokens", 0, 0}} {
		if err := r.Run(context.Background(), tc.layer, x, tc.n, nil); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if err := r.Head(x, 2, make([]float32, 3), nil); err == nil {
		t.Error("short logits: no error")
	}
	if err := m.Embed([]int{m.Config.VocabSize}, x); err == nil {
		t.Error("embed out of vocabulary: no error")
	}
}
