package convert

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
	"github.com/terse-llm/terse/tokenizer"
)

// randomModel builds a small model with random weights for cfg.
func randomModel(t *testing.T, cfg model.Config) *model.Model {
	t.Helper()
	r := rand.New(rand.NewPCG(1, uint64(cfg.NLayers)))
	vec := func(n int, base float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = base + float32(r.NormFloat64())*0.1
		}
		return v
	}
	matT := func(rows, cols int) *tensor.Tensor {
		return tensor.FromFloat32("", []int{rows, cols}, vec(rows*cols, 0))
	}
	mat := func(rows, cols int) model.Linear { return model.NewDense(matT(rows, cols)) }
	q, kv := cfg.NHeads*cfg.HeadDim, cfg.NKVHeads*cfg.HeadDim
	w := &model.Weights{TokEmbd: matT(cfg.VocabSize, cfg.Dim), OutNorm: vec(cfg.Dim, 1)}
	w.Output = model.NewDense(w.TokEmbd)
	if !cfg.TiedEmbeddings {
		w.Output = mat(cfg.VocabSize, cfg.Dim)
	}
	for range cfg.NLayers {
		l := model.Layer{AttnNorm: vec(cfg.Dim, 1), FFNNorm: vec(cfg.Dim, 1),
			Wq: mat(q, cfg.Dim), Wk: mat(kv, cfg.Dim), Wv: mat(kv, cfg.Dim), Wo: mat(cfg.Dim, q),
			Gate: mat(cfg.FFNDim, cfg.Dim), Up: mat(cfg.FFNDim, cfg.Dim), Down: mat(cfg.Dim, cfg.FFNDim)}
		if cfg.AttnBias {
			l.Wq = &model.Biased{Base: l.Wq, Bias: vec(q, 0)}
			l.Wk = &model.Biased{Base: l.Wk, Bias: vec(kv, 0)}
			l.Wv = &model.Biased{Base: l.Wv, Bias: vec(kv, 0)}
		}
		w.Layers = append(w.Layers, l)
	}
	m, err := model.New(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestConvertSyntheticRoundTrip converts random models in the shapes the
// fixtures do not cover (qwen2 with biases and tied embeddings, head_dim
// other than dim/heads, linear and llama3 RoPE scaling) and checks that
// the GGUF, reopened, computes the same logits.
func TestConvertSyntheticRoundTrip(t *testing.T) {
	tok, err := tokenizer.LoadHF(filepath.Join(testshared.Path(t, pdtextHF), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	base := model.Config{Arch: "llama", Dim: 32, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 8, FFNDim: 48,
		VocabSize: tok.VocabSize(), MaxSeqLen: 64, NormEps: 1e-6, RopeTheta: 500000, RopeStyle: model.RopeHalf, BOS: 0, EOS: 0}
	cases := map[string]func(c *model.Config) (arch string, keys map[string]any){
		"qwen2": func(c *model.Config) (string, map[string]any) {
			c.Arch, c.AttnBias, c.TiedEmbeddings = "qwen2", true, true
			return "qwen2", nil
		},
		"headdim16": func(c *model.Config) (string, map[string]any) {
			c.HeadDim = 16
			return "llama", map[string]any{"llama.attention.key_length": uint32(16), "llama.rope.dimension_count": uint32(16)}
		},
		"linear": func(c *model.Config) (string, map[string]any) {
			c.Arch = "mistral"
			c.RopeScaling = &model.RopeScaling{Type: "linear", Factor: 4}
			return "llama", map[string]any{"llama.rope.scaling.type": "linear", "llama.rope.scaling.factor": float32(4)}
		},
		"llama3": func(c *model.Config) (string, map[string]any) {
			c.RopeScaling = &model.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 16}
			return "llama", nil
		},
	}
	ids := tok.Encode("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.", false)
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := base
			arch, keys := setup(&cfg)
			src := &load.Checkpoint{Path: t.TempDir(), Format: load.HF, Model: randomModel(t, cfg), Tokenizer: tok}
			path := filepath.Join(t.TempDir(), name+".gguf")
			if err := WriteGGUF(path, src, Options{}); err != nil {
				t.Fatal(err)
			}
			ck, err := load.Open(path, load.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			f := openGGUF(t, path)
			if a, _ := f.String("general.architecture"); a != arch {
				t.Errorf("architecture %q, want %q", a, arch)
			}
			for k, v := range keys {
				if got, _ := f.Value(k); got != v {
					t.Errorf("%s = %v, want %v", k, got, v)
				}
			}
			_, hasOut := f.Lookup("output.weight")
			_, hasFreqs := f.Lookup("rope_freqs.weight")
			_, hasBias := f.Lookup("blk.1.attn_k.bias")
			if hasOut == cfg.TiedEmbeddings || hasFreqs != (name == "llama3") || hasBias != cfg.AttnBias {
				t.Errorf("output.weight %v, rope_freqs.weight %v, attn_k.bias %v", hasOut, hasFreqs, hasBias)
			}
			if name == "qwen2" {
				// NEOX RoPE: rows stay in Hugging Face's order.
				q, _ := f.Tensor("blk.0.attn_q.weight")
				if !slices.Equal(q.Data, denseData(src.Model.Weights.Layers[0].Wq)) {
					t.Error("qwen2 attn_q was permuted")
				}
			}
			a, b := logits(t, src, ids), logits(t, ck, ids)
			var maxd float64
			for i := range a {
				maxd = max(maxd, math.Abs(float64(a[i]-b[i])))
			}
			if maxd > 1e-4 {
				t.Errorf("max |Δlogit| %.3g", maxd)
			}
		})
	}
}

func denseData(l model.Linear) []byte {
	t, _ := model.DenseTensor(l)
	return t.Data
}
