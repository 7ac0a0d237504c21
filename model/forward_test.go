package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// randomModel builds a small model with random float32 weights, stored as dt.
func randomModel(t *testing.T, cfg Config, dt tensor.DType, seed uint64) (*Model, map[string][]float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	ref := map[string][]float64{}
	tensors := map[string]*tensor.Tensor{}
	add := func(name string, shape []int, scale float64, offset float64) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		f := make([]float64, n)
		for i := range v {
			v[i] = float32(offset + scale*(rng.Float64()*2-1))
		}
		tt := tensor.FromFloat32(name, shape, v)
		if len(shape) == 2 && dt != tensor.F32 {
			b := make([]byte, 2*n)
			for i, x := range v {
				var h uint16
				if dt == tensor.F16 {
					h = tensor.F32ToF16(x)
					v[i] = tensor.F16ToF32(h)
				} else {
					h = tensor.F32ToBF16(x)
					v[i] = tensor.BF16ToF32(h)
				}
				b[2*i], b[2*i+1] = byte(h), byte(h>>8)
			}
			tt = &tensor.Tensor{Name: name, DType: dt, Shape: shape, Data: b}
		}
		for i, x := range v {
			f[i] = float64(x)
		}
		tensors[name] = tt
		ref[name] = f
	}
	add("token_embd.weight", []int{cfg.VocabSize, cfg.Dim}, 1, 0)
	add("output_norm.weight", []int{cfg.Dim}, 0.2, 1)
	if !cfg.TiedEmbeddings {
		add("output.weight", []int{cfg.VocabSize, cfg.Dim}, 0.3, 0)
	}
	for l := 0; l < cfg.NLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		ls := cfg.Layer(l)
		qDim, kvDim := ls.NHeads*cfg.HeadDim, ls.NKVHeads*cfg.HeadDim
		add(p+"attn_norm.weight", []int{cfg.Dim}, 0.2, 1)
		add(p+"ffn_norm.weight", []int{cfg.Dim}, 0.2, 1)
		add(p+"attn_q.weight", []int{qDim, cfg.Dim}, 0.3, 0)
		add(p+"attn_k.weight", []int{kvDim, cfg.Dim}, 0.3, 0)
		add(p+"attn_v.weight", []int{kvDim, cfg.Dim}, 0.3, 0)
		add(p+"attn_output.weight", []int{cfg.Dim, qDim}, 0.3, 0)
		add(p+"ffn_gate.weight", []int{ls.FFNDim, cfg.Dim}, 0.3, 0)
		add(p+"ffn_up.weight", []int{ls.FFNDim, cfg.Dim}, 0.3, 0)
		add(p+"ffn_down.weight", []int{cfg.Dim, ls.FFNDim}, 0.3, 0)
		if cfg.AttnBias {
			add(p+"attn_q.bias", []int{qDim}, 0.5, 0)
			add(p+"attn_k.bias", []int{kvDim}, 0.5, 0)
			add(p+"attn_v.bias", []int{kvDim}, 0.5, 0)
		}
	}
	if cfg.TiedEmbeddings {
		ref["output.weight"] = ref["token_embd.weight"]
	}
	m, err := Load(cfg, func(name string) (*tensor.Tensor, bool, error) {
		tt, ok := tensors[name]
		return tt, ok, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, ref
}

// refRopeFreqs computes RoPE's inverse frequencies from the formulas, on
// its own: θ^(−2i/d), divided by GGUF's per-frequency factors when given;
// linear scaling divides all by the factor; Llama 3's rule keeps
// wavelengths under original/high_freq_factor, divides those over
// original/low_freq_factor by the factor, and blends in between with
// smooth = (original/wavelength − low)/(high − low).
func refRopeFreqs(c *Config) []float64 {
	d := float64(c.HeadDim)
	f := make([]float64, c.HeadDim/2)
	for i := range f {
		f[i] = math.Exp(-float64(2*i) / d * math.Log(c.RopeTheta))
	}
	s := c.RopeScaling
	switch {
	case s == nil:
	case len(s.FreqFactors) == len(f):
		for i := range f {
			f[i] /= s.FreqFactors[i]
		}
	case s.Type == "linear" && s.Factor != 0:
		for i := range f {
			f[i] /= s.Factor
		}
	case s.Type == "llama3" && s.Factor != 0:
		orig := float64(s.OriginalMaxPos)
		for i := range f {
			wl := 2 * math.Pi / f[i]
			if wl <= orig/s.HighFreqFactor {
				continue
			}
			scaled := f[i] / s.Factor
			if wl >= orig/s.LowFreqFactor {
				f[i] = scaled
				continue
			}
			smooth := (orig/wl - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
			f[i] = scaled + smooth*(f[i]-scaled)
		}
	}
	return f
}

// refForward is an independent float64 forward pass that recomputes the
// whole sequence and returns logits for every position.
func refForward(c Config, w map[string][]float64, tokens []int) [][]float64 {
	dim, hd := c.Dim, c.HeadDim
	matvec := func(name string, x []float64, rows int) []float64 {
		m := w[name]
		cols := len(x)
		out := make([]float64, rows)
		for r := range out {
			for i := 0; i < cols; i++ {
				out[r] += m[r*cols+i] * x[i]
			}
		}
		return out
	}
	norm := func(x, g []float64) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(len(x))+c.NormEps)
		out := make([]float64, len(x))
		for i := range x {
			out[i] = x[i] * inv * g[i]
		}
		return out
	}
	freqs := refRopeFreqs(&c)
	rope := func(x []float64, pos int) {
		for h := 0; h < len(x)/hd; h++ {
			v := x[h*hd : (h+1)*hd]
			for i, f := range freqs {
				a, b := 2*i, 2*i+1
				if c.RopeStyle == RopeHalf {
					a, b = i, i+hd/2
				}
				cs, sn := math.Cos(float64(pos)*f), math.Sin(float64(pos)*f)
				x0, x1 := v[a], v[b]
				v[a], v[b] = x0*cs-x1*sn, x0*sn+x1*cs
			}
		}
	}
	T := len(tokens)
	xs := make([][]float64, T)
	for t, id := range tokens {
		xs[t] = append([]float64(nil), w["token_embd.weight"][id*dim:(id+1)*dim]...)
	}
	for l := 0; l < c.NLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		ls := c.Layer(l)
		qDim, kvDim := ls.NHeads*hd, ls.NKVHeads*hd
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range xs {
			h := norm(xs[t], w[p+"attn_norm.weight"])
			qs[t], ks[t], vs[t] = matvec(p+"attn_q.weight", h, qDim), matvec(p+"attn_k.weight", h, kvDim), matvec(p+"attn_v.weight", h, kvDim)
			if c.AttnBias {
				for i := range qs[t] {
					qs[t][i] += w[p+"attn_q.bias"][i]
				}
				for i := range ks[t] {
					ks[t][i] += w[p+"attn_k.bias"][i]
					vs[t][i] += w[p+"attn_v.bias"][i]
				}
			}
			rope(qs[t], t)
			rope(ks[t], t)
		}
		for t := range xs {
			att := make([]float64, qDim)
			for h := 0; h < ls.NHeads; h++ {
				kh := h / (ls.NHeads / ls.NKVHeads)
				sc := make([]float64, t+1)
				maxv := math.Inf(-1)
				for s := 0; s <= t; s++ {
					for i := 0; i < hd; i++ {
						sc[s] += qs[t][h*hd+i] * ks[s][kh*hd+i]
					}
					sc[s] /= math.Sqrt(float64(hd))
					maxv = math.Max(maxv, sc[s])
				}
				var sum float64
				for s := range sc {
					sc[s] = math.Exp(sc[s] - maxv)
					sum += sc[s]
				}
				for s := range sc {
					for i := 0; i < hd; i++ {
						att[h*hd+i] += sc[s] / sum * vs[s][kh*hd+i]
					}
				}
			}
			o := matvec(p+"attn_output.weight", att, dim)
			for i := range o {
				xs[t][i] += o[i]
			}
			h := norm(xs[t], w[p+"ffn_norm.weight"])
			g, u := matvec(p+"ffn_gate.weight", h, ls.FFNDim), matvec(p+"ffn_up.weight", h, ls.FFNDim)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			d := matvec(p+"ffn_down.weight", g, dim)
			for i := range d {
				xs[t][i] += d[i]
			}
		}
	}
	out := make([][]float64, T)
	for t := range xs {
		out[t] = matvec("output.weight", norm(xs[t], w["output_norm.weight"]), c.VocabSize)
	}
	return out
}

func TestForwardMatchesFloat64Reference(t *testing.T) {
	base := Config{Arch: "llama", Dim: 48, NLayers: 2, NHeads: 6, NKVHeads: 2, HeadDim: 8, FFNDim: 40,
		VocabSize: 37, MaxSeqLen: 64, NormEps: 1e-5, RopeTheta: 10000, BOS: 1, EOS: 2}
	tests := []struct {
		name string
		mod  func(c *Config)
		dt   tensor.DType
	}{
		{"llama-interleaved-f32", func(c *Config) {}, tensor.F32},
		{"hf-half-rope-bf16", func(c *Config) { c.RopeStyle = RopeHalf }, tensor.BF16},
		{"qwen2-bias-tied-f16", func(c *Config) { c.AttnBias, c.TiedEmbeddings, c.RopeStyle = true, true, RopeHalf }, tensor.F16},
		{"mha-llama3-scaling", func(c *Config) {
			c.NKVHeads, c.HeadDim, c.NHeads = 4, 12, 4
			c.RopeScaling = &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 16}
		}, tensor.F32},
		{"linear-scaling", func(c *Config) { c.RopeScaling = &RopeScaling{Type: "linear", Factor: 4} }, tensor.F32},
		{"freq-factors", func(c *Config) {
			c.RopeScaling = &RopeScaling{FreqFactors: []float64{1, 1.5, 3, 8}}
		}, tensor.F16},
		{"per-layer-shapes", func(c *Config) {
			c.NLayers = 3
			c.Layers = []LayerShape{{NHeads: 4, NKVHeads: 4, FFNDim: 24}, {}, {NHeads: 2, NKVHeads: 1, FFNDim: 56}}
		}, tensor.F32},
	}
	tokens := []int{1, 5, 9, 33, 2, 0, 36, 17, 17, 4, 22}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mod(&cfg)
			m, w := randomModel(t, cfg, tc.dt, uint64(i+1))
			want := refForward(cfg, w, tokens)
			V := cfg.VocabSize
			check := func(what string, got []float32, row int) {
				for j := 0; j < V; j++ {
					if d := math.Abs(float64(got[j]) - want[row][j]); d > 2e-4*(1+math.Abs(want[row][j])) {
						t.Fatalf("%s: position %d logit %d = %v, reference %v", what, row, j, got[j], want[row][j])
					}
				}
			}
			// One batched prefill of everything.
			for _, batch := range []int{len(tokens), 4, 1} {
				st := m.NewState(32, batch)
				all := make([]float32, len(tokens)*V)
				if err := st.Forward(tokens, all, true); err != nil {
					t.Fatal(err)
				}
				for r := range tokens {
					check(fmt.Sprintf("batch %d", batch), all[r*V:(r+1)*V], r)
				}
			}
			// Prefill then decode one at a time.
			st := m.NewState(32, 8)
			last := make([]float32, V)
			if err := st.Forward(tokens[:5], last, false); err != nil {
				t.Fatal(err)
			}
			check("prefill-last", last, 4)
			for r := 5; r < len(tokens); r++ {
				if err := st.Forward(tokens[r:r+1], last, false); err != nil {
					t.Fatal(err)
				}
				check("decode", last, r)
			}
		})
	}
}

func TestForwardErrors(t *testing.T) {
	cfg := Config{Arch: "llama", Dim: 8, NLayers: 1, NHeads: 2, NKVHeads: 1, HeadDim: 4, FFNDim: 8,
		VocabSize: 10, NormEps: 1e-5, RopeTheta: 10000}
	m, _ := randomModel(t, cfg, tensor.F32, 3)
	st := m.NewState(4, 4)
	out := make([]float32, 100)
	tests := []struct {
		name   string
		tokens []int
	}{
		{"empty", nil},
		{"out of vocab", []int{10}},
		{"negative", []int{-1}},
		{"past context", []int{1, 2, 3, 4, 5}},
	}
	for _, tc := range tests {
		if err := st.Forward(tc.tokens, out, true); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if err := st.Forward([]int{1, 2}, out[:5], true); err == nil {
		t.Error("short logits buffer: no error")
	}
}

func TestDecodeAllocatesNothing(t *testing.T) {
	cfg := Config{Arch: "llama", Dim: 64, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 16, FFNDim: 96,
		VocabSize: 50, NormEps: 1e-5, RopeTheta: 10000}
	m, _ := randomModel(t, cfg, tensor.F16, 9)
	st := m.NewState(300, 1)
	logits := make([]float32, cfg.VocabSize)
	tok := []int{3}
	st.Forward(tok, logits, false) // warm the kernel's scratch
	if n := testing.AllocsPerRun(100, func() {
		if err := st.Forward(tok, logits, false); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("decode allocates %v times per token", n)
	}

	// A decode step of two sequences in one batch, over float caches and
	// over the q8 stand-in (which dequantizes into reused scratch).
	for _, q8 := range []bool{false, true} {
		e := m.NewEngine(300, 2)
		for id := range 2 {
			var c KVCache = m.NewCache(300)
			if q8 {
				c = newQ8Cache(&m.Config, 300)
			}
			if _, err := e.AddSeq(id, c); err != nil {
				t.Fatal(err)
			}
		}
		out := make([]float32, 2*cfg.VocabSize)
		b := Batch{Tokens: []int{3, 4}, Seqs: []int{0, 1}, Pos: []int{0, 0}}
		step := func() {
			if err := e.Forward(context.Background(), b, out); err != nil {
				t.Fatal(err)
			}
			b.Pos[0]++
			b.Pos[1]++
		}
		step()
		if n := testing.AllocsPerRun(100, step); n != 0 {
			t.Errorf("two-sequence decode (q8 %v) allocates %v times per step", q8, n)
		}
	}
}

func TestConfigPerLayerShapes(t *testing.T) {
	base := Config{Arch: "llama", Dim: 8, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 4, FFNDim: 8,
		VocabSize: 10, NormEps: 1e-5, RopeTheta: 10000}
	tests := []struct {
		name   string
		layers []LayerShape
		ok     bool
		want1  LayerShape
	}{
		{"none", nil, true, LayerShape{4, 2, 8}},
		{"override", []LayerShape{{}, {NHeads: 2, FFNDim: 3}}, true, LayerShape{2, 2, 3}},
		{"wrong count", []LayerShape{{}}, false, LayerShape{}},
		{"negative", []LayerShape{{}, {FFNDim: -1}}, false, LayerShape{}},
		{"heads not a multiple", []LayerShape{{}, {NHeads: 3}}, false, LayerShape{}},
	}
	for _, tc := range tests {
		c := base
		c.Layers = tc.layers
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
			continue
		}
		if tc.ok && c.Layer(1) != tc.want1 {
			t.Errorf("%s: Layer(1) = %+v, want %+v", tc.name, c.Layer(1), tc.want1)
		}
	}
	// Weights that do not follow the per-layer shapes are refused.
	c := base
	m, _ := randomModel(t, c, tensor.F32, 2)
	c.Layers = []LayerShape{{}, {FFNDim: 4}}
	if _, err := New(c, m.Weights); err == nil {
		t.Error("weights of the wrong per-layer shape: no error")
	}
}
