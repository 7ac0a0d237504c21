package prefix

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
)

// testCfg is a small model with grouped-query attention and RoPE, for the
// tests that need no shared data.
var testCfg = model.Config{Arch: "llama", Dim: 32, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 8, FFNDim: 48,
	VocabSize: 50, MaxSeqLen: 512, NormEps: 1e-5, RopeTheta: 10000, BOS: 1, EOS: 2, RopeStyle: model.RopeHalf}

// randomModel builds a model of cfg with random float32 weights.
func randomModel(t testing.TB, cfg model.Config, seed uint64) *model.Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	tensors := map[string]*tensor.Tensor{}
	add := func(name string, shape []int, scale, offset float64) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(offset + scale*(rng.Float64()*2-1))
		}
		tensors[name] = tensor.FromFloat32(name, shape, v)
	}
	add("token_embd.weight", []int{cfg.VocabSize, cfg.Dim}, 1, 0)
	add("output_norm.weight", []int{cfg.Dim}, 0.2, 1)
	add("output.weight", []int{cfg.VocabSize, cfg.Dim}, 0.3, 0)
	for l := 0; l < cfg.NLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		q, kv := cfg.QDim(l), cfg.KVDim(l)
		add(p+"attn_norm.weight", []int{cfg.Dim}, 0.2, 1)
		add(p+"ffn_norm.weight", []int{cfg.Dim}, 0.2, 1)
		add(p+"attn_q.weight", []int{q, cfg.Dim}, 0.4, 0)
		add(p+"attn_k.weight", []int{kv, cfg.Dim}, 0.4, 0)
		add(p+"attn_v.weight", []int{kv, cfg.Dim}, 0.4, 0)
		add(p+"attn_output.weight", []int{cfg.Dim, q}, 0.3, 0)
		add(p+"ffn_gate.weight", []int{cfg.FFNDim, cfg.Dim}, 0.3, 0)
		add(p+"ffn_up.weight", []int{cfg.FFNDim, cfg.Dim}, 0.3, 0)
		add(p+"ffn_down.weight", []int{cfg.Dim, cfg.FFNDim}, 0.3, 0)
	}
	m, err := model.Load(cfg, func(name string) (*tensor.Tensor, bool, error) {
		tt, ok := tensors[name]
		return tt, ok, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomTokens draws n tokens below vocab, BOS first.
func randomTokens(rng *rand.Rand, n, vocab, bos int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 3 + rng.IntN(vocab-3)
	}
	if n > 0 {
		out[0] = bos
	}
	return out
}

// coldLogits prefills tokens into a fresh float cache and returns every
// position's logits.
func coldLogits(t testing.TB, m *model.Model, tokens []int, batch int) []float32 {
	t.Helper()
	st := m.NewStateWithCache(m.NewCache(len(tokens)), batch)
	out := make([]float32, len(tokens)*m.Config.VocabSize)
	if err := st.Forward(tokens, out, true); err != nil {
		t.Fatal(err)
	}
	return out
}

// kld is KL(p‖q) of the softmaxes of two logit rows, in nats.
func kld(p, q []float32) float64 {
	lse := func(x []float32) float64 {
		m := math.Inf(-1)
		for _, v := range x {
			m = math.Max(m, float64(v))
		}
		var s float64
		for _, v := range x {
			s += math.Exp(float64(v) - m)
		}
		return m + math.Log(s)
	}
	lp, lq := lse(p), lse(q)
	var d float64
	for i := range p {
		a := float64(p[i]) - lp
		d += math.Exp(a) * (a - (float64(q[i]) - lq))
	}
	return max(d, 0)
}
