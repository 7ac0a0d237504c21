package model

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// TestRecomputeEveryPositionIsColdPrefill fills a cache with the KV of
// other tokens, then recomputes every position with the right ones: the
// logits and the cache must equal a cold prefill's bit for bit (same
// batching, same kernels, same inputs), and the float64 reference's
// within the engine's rounding.
func TestRecomputeEveryPositionIsColdPrefill(t *testing.T) {
	tokens := []int{1, 5, 9, 33, 2, 0, 36, 17, 17, 4, 22}
	other := []int{1, 8, 8, 30, 12, 3, 3, 20, 6, 11, 29}
	for _, style := range []RopeStyle{RopeInterleaved, RopeHalf} {
		for _, batch := range []int{len(tokens), 4, 1} {
			t.Run(fmt.Sprintf("%v-batch%d", style, batch), func(t *testing.T) {
				cfg := engineCfg
				cfg.RopeStyle = style
				m, w := randomModel(t, cfg, tensor.F32, 31)
				V := cfg.VocabSize
				n := len(tokens)
				want := refForward(m.Config, w, tokens)

				cold := m.NewStateWithCache(m.NewCache(32), batch)
				coldOut := make([]float32, n*V)
				if err := cold.Forward(tokens, coldOut, true); err != nil {
					t.Fatal(err)
				}
				st := m.NewStateWithCache(m.NewCache(32), batch)
				if err := st.Forward(other, make([]float32, V), false); err != nil {
					t.Fatal(err)
				}
				pos := make([]int, n)
				for i := range pos {
					pos[i] = i
				}
				out := make([]float32, n*V)
				if err := st.Recompute(context.Background(), tokens, pos, nil, out); err != nil {
					t.Fatal(err)
				}
				if st.Pos() != n {
					t.Fatalf("%d positions after recompute, want %d", st.Pos(), n)
				}
				for i := range out {
					if math.Float32bits(out[i]) != math.Float32bits(coldOut[i]) {
						t.Fatalf("logit %d of position %d = %v, cold prefill %v", i%V, i/V, out[i], coldOut[i])
					}
					if d := math.Abs(float64(out[i]) - want[i/V][i%V]); d > 2e-4*(1+math.Abs(want[i/V][i%V])) {
						t.Fatalf("logit %d of position %d = %v, reference %v", i%V, i/V, out[i], want[i/V][i%V])
					}
				}
				a, _ := ExportKV(cold.Cache(), &m.Config, 0, n)
				b, _ := ExportKV(st.Cache(), &m.Config, 0, n)
				for l := range a.K {
					for i := range a.K[l] {
						if math.Float32bits(a.K[l][i]) != math.Float32bits(b.K[l][i]) || math.Float32bits(a.V[l][i]) != math.Float32bits(b.V[l][i]) {
							t.Fatalf("layer %d float %d: recomputed KV differs from the cold prefill's", l, i)
						}
					}
				}
			})
		}
	}
}

// TestRecomputeSubsetThenAppend recomputes a few held positions of an exact
// cache with their own tokens (nothing may change beyond rounding) and
// appends the rest of the sequence in the same batch.
func TestRecomputeSubsetThenAppend(t *testing.T) {
	m, w := randomModel(t, engineCfg, tensor.F32, 32)
	tokens := []int{1, 5, 9, 33, 2, 0, 36, 17, 17, 4, 22}
	want := refForward(m.Config, w, tokens)
	V := m.Config.VocabSize
	st := m.NewStateWithCache(m.NewCache(32), 3) // pieces of 3: the batch spans pieces
	if err := st.Forward(tokens[:7], make([]float32, V), false); err != nil {
		t.Fatal(err)
	}
	before, _ := ExportKV(st.Cache(), &m.Config, 0, 7)
	sel := []int{2, 5, 6}
	var toks, pos []int
	for _, p := range sel {
		toks, pos = append(toks, tokens[p]), append(pos, p)
	}
	for p := 7; p < len(tokens); p++ {
		toks, pos = append(toks, tokens[p]), append(pos, p)
	}
	out := make([]float32, len(toks)*V)
	if err := st.Recompute(context.Background(), toks, pos, nil, out); err != nil {
		t.Fatal(err)
	}
	for i, p := range pos {
		for j := 0; j < V; j++ {
			g, r := float64(out[i*V+j]), want[p][j]
			if math.Abs(g-r) > 2e-4*(1+math.Abs(r)) {
				t.Fatalf("position %d logit %d = %v, reference %v", p, j, g, r)
			}
		}
	}
	after, _ := ExportKV(st.Cache(), &m.Config, 0, 7)
	for l := range before.K {
		for i := range before.K[l] {
			if d := math.Abs(float64(before.K[l][i] - after.K[l][i])); d > 1e-5*(1+math.Abs(float64(before.K[l][i]))) {
				t.Fatalf("layer %d key float %d moved from %v to %v", l, i, before.K[l][i], after.K[l][i])
			}
		}
	}
}

func TestRecomputeErrors(t *testing.T) {
	m, _ := randomModel(t, engineCfg, tensor.F32, 33)
	V := m.Config.VocabSize
	out := make([]float32, 8*V)
	ctx := context.Background()
	tests := []struct {
		name     string
		cache    func() KVCache
		tok, pos []int
		want     string
	}{
		{"not increasing", func() KVCache { return m.NewCache(16) }, []int{1, 2}, []int{3, 3}, "does not follow"},
		{"gap past the end", func() KVCache { return m.NewCache(16) }, []int{1, 2}, []int{1, 6}, "is at position 5"},
		{"negative", func() KVCache { return m.NewCache(16) }, []int{1}, []int{-1}, "position -1"},
		{"past the context", func() KVCache { return m.NewCache(5) }, []int{1}, []int{5}, "exceed the context"},
		{"cache cannot overwrite", func() KVCache { return newQ8Cache(&m.Config, 16) }, []int{1}, []int{2}, "cannot overwrite"},
		{"token outside vocabulary", func() KVCache { return m.NewCache(16) }, []int{99}, []int{2}, "outside the vocabulary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := m.NewStateWithCache(tc.cache(), 4)
			if err := st.Forward([]int{1, 3, 4, 5, 6}, make([]float32, V), false); err != nil {
				t.Fatal(err)
			}
			err := st.Recompute(ctx, tc.tok, tc.pos, nil, out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if st.Pos() != 5 {
				t.Fatalf("%d positions after a failed recompute, want 5", st.Pos())
			}
		})
	}
}

// refFirstLayerAttention is the float64 first-layer attention of every
// position of tokens, averaged over the query heads.
func refFirstLayerAttention(c Config, w map[string][]float64, tokens []int) [][]float64 {
	dim, hd := c.Dim, c.HeadDim
	ls := c.Layer(0)
	qDim, kvDim := ls.NHeads*hd, ls.NKVHeads*hd
	freqs := refRopeFreqs(&c)
	proj := func(name string, x []float64, rows int) []float64 {
		out := make([]float64, rows)
		for r := range out {
			for i, v := range x {
				out[r] += w[name][r*len(x)+i] * v
			}
		}
		return out
	}
	rope := func(x []float64, pos int) {
		for h := 0; h < len(x)/hd; h++ {
			for i, f := range freqs {
				a, b := h*hd+2*i, h*hd+2*i+1
				if c.RopeStyle == RopeHalf {
					a, b = h*hd+i, h*hd+i+hd/2
				}
				cs, sn := math.Cos(float64(pos)*f), math.Sin(float64(pos)*f)
				x[a], x[b] = x[a]*cs-x[b]*sn, x[a]*sn+x[b]*cs
			}
		}
	}
	qs, ks := make([][]float64, len(tokens)), make([][]float64, len(tokens))
	for t, id := range tokens {
		x := w["token_embd.weight"][id*dim : (id+1)*dim]
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(dim)+c.NormEps)
		h := make([]float64, dim)
		for i := range h {
			h[i] = x[i] * inv * w["blk.0.attn_norm.weight"][i]
		}
		qs[t], ks[t] = proj("blk.0.attn_q.weight", h, qDim), proj("blk.0.attn_k.weight", h, kvDim)
		rope(qs[t], t)
		rope(ks[t], t)
	}
	out := make([][]float64, len(tokens))
	for t := range tokens {
		out[t] = make([]float64, t+1)
		for h := 0; h < ls.NHeads; h++ {
			kh := h / (ls.NHeads / ls.NKVHeads)
			sc := make([]float64, t+1)
			var sum float64
			for s := range sc {
				for i := 0; i < hd; i++ {
					sc[s] += qs[t][h*hd+i] * ks[s][kh*hd+i]
				}
				sc[s] = math.Exp(sc[s] / math.Sqrt(float64(hd)))
				sum += sc[s]
			}
			for s := range sc {
				out[t][s] += sc[s] / sum / float64(ls.NHeads)
			}
		}
	}
	return out
}

// TestFirstLayerAttention checks the probe against the float64 reference on
// a cache whose deeper layers hold another sequence's KV (the probe reads
// only the first layer).
func TestFirstLayerAttention(t *testing.T) {
	for _, style := range []RopeStyle{RopeInterleaved, RopeHalf} {
		cfg := engineCfg
		cfg.RopeStyle = style
		m, w := randomModel(t, cfg, tensor.F32, 34)
		tokens := []int{1, 5, 9, 33, 2, 0, 36, 17, 17, 4, 22}
		want := refFirstLayerAttention(m.Config, w, tokens)
		st := m.NewStateWithCache(m.NewCache(32), 4)
		if err := st.Forward(tokens, make([]float32, cfg.VocabSize), false); err != nil {
			t.Fatal(err)
		}
		pos := []int{0, 3, 4, 10}
		var toks []int
		for _, p := range pos {
			toks = append(toks, tokens[p])
		}
		seen := 0
		err := st.FirstLayerAttention(context.Background(), toks, pos, func(i int, row []float32) {
			seen++
			p := pos[i]
			if len(row) != p+1 {
				t.Fatalf("token %d: %d weights, want %d", i, len(row), p+1)
			}
			for s, g := range row {
				if d := math.Abs(float64(g) - want[p][s]); d > 1e-5 {
					t.Fatalf("%v: position %d weight on %d = %v, reference %v", style, p, s, g, want[p][s])
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if seen != len(pos) {
			t.Fatalf("%d rows seen, want %d", seen, len(pos))
		}
		if err := st.FirstLayerAttention(context.Background(), []int{1}, []int{11}, func(int, []float32) {}); err == nil {
			t.Fatal("probing a position the cache does not hold succeeded")
		}
	}
}
