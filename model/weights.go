package model

import (
	"fmt"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Weights are a model's parameters under llama.cpp's canonical names
// ("token_embd.weight", "blk.0.attn_q.weight", ...). The token embedding is
// a tensor (rows are looked up, not multiplied); every projection is a
// Linear. Loaded projections are Dense (Shape [out, in], in their stored
// type), wrapped in Biased where the checkpoint has biases; norms and
// biases are widened to float32 once, at load, because they are tiny.
type Weights struct {
	TokEmbd *tensor.Tensor // [vocab, dim]
	OutNorm []float32      // [dim]
	Output  Linear         // [vocab, dim]; Dense over TokEmbd when tied
	Layers  []Layer
}

// Layer holds one transformer block.
type Layer struct {
	AttnNorm       []float32
	Wq, Wk, Wv, Wo Linear // q, k and v carry their biases (Biased) when the model has them
	FFNNorm        []float32
	Gate, Up, Down Linear
}

// Tied reports whether the output projection is the token embedding.
func (w *Weights) Tied() bool {
	t, ok := DenseTensor(w.Output)
	return ok && t == w.TokEmbd
}

// TensorSource looks tensors up by canonical name; ok is false when the
// name is absent.
type TensorSource func(name string) (t *tensor.Tensor, ok bool, err error)

// LoadWeights gathers and checks every tensor cfg calls for.
func LoadWeights(cfg *Config, src TensorSource) (*Weights, error) {
	matrix := func(name string, rows, cols int) (*tensor.Tensor, error) {
		t, ok, err := src(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("tensor %q is missing", name)
		}
		if len(t.Shape) != 2 || t.Shape[0] != rows || t.Shape[1] != cols {
			return nil, fmt.Errorf("tensor %q has shape %v, want [%d %d]", name, t.Shape, rows, cols)
		}
		if _, err := t.DType.RowBytes(cols); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		return t, nil
	}
	vector := func(name string, n int, required bool) ([]float32, error) {
		t, ok, err := src(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			if required {
				return nil, fmt.Errorf("tensor %q is missing", name)
			}
			return nil, nil
		}
		if t.NumElements() != n {
			return nil, fmt.Errorf("tensor %q has shape %v, want [%d]", name, t.Shape, n)
		}
		v := make([]float32, n)
		if err := ggml.Dequantize(t.DType, t.Data, v); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		return v, nil
	}

	w := &Weights{}
	var err error
	if w.TokEmbd, err = matrix("token_embd.weight", cfg.VocabSize, cfg.Dim); err != nil {
		return nil, err
	}
	if w.OutNorm, err = vector("output_norm.weight", cfg.Dim, true); err != nil {
		return nil, err
	}
	if cfg.TiedEmbeddings {
		w.Output = NewDense(w.TokEmbd)
	} else {
		t, err := matrix("output.weight", cfg.VocabSize, cfg.Dim)
		if err != nil {
			return nil, err
		}
		w.Output = NewDense(t)
	}
	w.Layers = make([]Layer, cfg.NLayers)
	for i := range w.Layers {
		l := &w.Layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		qDim, kvDim, ffn := cfg.QDim(i), cfg.KVDim(i), cfg.Layer(i).FFNDim
		steps := []struct {
			dst        *Linear
			name, bias string
			rows, cols int
		}{
			{&l.Wq, "attn_q.weight", "attn_q.bias", qDim, cfg.Dim},
			{&l.Wk, "attn_k.weight", "attn_k.bias", kvDim, cfg.Dim},
			{&l.Wv, "attn_v.weight", "attn_v.bias", kvDim, cfg.Dim},
			{&l.Wo, "attn_output.weight", "", cfg.Dim, qDim},
			{&l.Gate, "ffn_gate.weight", "", ffn, cfg.Dim},
			{&l.Up, "ffn_up.weight", "", ffn, cfg.Dim},
			{&l.Down, "ffn_down.weight", "", cfg.Dim, ffn},
		}
		for _, s := range steps {
			t, err := matrix(p+s.name, s.rows, s.cols)
			if err != nil {
				return nil, err
			}
			*s.dst = NewDense(t)
			if s.bias == "" {
				continue
			}
			b, err := vector(p+s.bias, s.rows, cfg.AttnBias)
			if err != nil {
				return nil, err
			}
			if b != nil {
				*s.dst = &Biased{Base: *s.dst, Bias: b}
			}
		}
		if l.AttnNorm, err = vector(p+"attn_norm.weight", cfg.Dim, true); err != nil {
			return nil, err
		}
		if l.FFNNorm, err = vector(p+"ffn_norm.weight", cfg.Dim, true); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Linears lists every projection in file order (layers, then the output).
func (w *Weights) Linears() []Linear {
	var out []Linear
	for i := range w.Layers {
		l := &w.Layers[i]
		out = append(out, l.Wq, l.Wk, l.Wv, l.Wo, l.Gate, l.Up, l.Down)
	}
	return append(out, w.Output)
}

// Matrices lists the tensor of every dense-backed weight matrix with its
// canonical name, in file order (embedding, layers, output; the tied output
// once). Projections that are not dense (DenseTensor) are left out.
func (w *Weights) Matrices() []*tensor.Tensor {
	out := []*tensor.Tensor{w.TokEmbd}
	for _, l := range w.Linears() {
		if t, ok := DenseTensor(l); ok && t != w.TokEmbd {
			out = append(out, t)
		}
	}
	return out
}

// check verifies that every projection has the shape cfg gives its layer.
func (w *Weights) check(cfg *Config) error {
	if w.TokEmbd == nil || w.Output == nil {
		return fmt.Errorf("model: weights without token embedding or output")
	}
	if w.TokEmbd.Rows() != cfg.VocabSize || w.TokEmbd.Cols() != cfg.Dim {
		return fmt.Errorf("model: token_embd.weight is %d×%d, want %d×%d", w.TokEmbd.Rows(), w.TokEmbd.Cols(), cfg.VocabSize, cfg.Dim)
	}
	type want struct {
		l          Linear
		what       string
		rows, cols int
	}
	checks := []want{{w.Output, "output", cfg.VocabSize, cfg.Dim}}
	for i := range w.Layers {
		l := &w.Layers[i]
		q, kv, ffn := cfg.QDim(i), cfg.KVDim(i), cfg.Layer(i).FFNDim
		checks = append(checks,
			want{l.Wq, "attn_q", q, cfg.Dim}, want{l.Wk, "attn_k", kv, cfg.Dim}, want{l.Wv, "attn_v", kv, cfg.Dim},
			want{l.Wo, "attn_output", cfg.Dim, q}, want{l.Gate, "ffn_gate", ffn, cfg.Dim},
			want{l.Up, "ffn_up", ffn, cfg.Dim}, want{l.Down, "ffn_down", cfg.Dim, ffn})
		if len(l.AttnNorm) != cfg.Dim || len(l.FFNNorm) != cfg.Dim {
			return fmt.Errorf("model: layer %d: norms of %d and %d for dim %d", i, len(l.AttnNorm), len(l.FFNNorm), cfg.Dim)
		}
	}
	for _, c := range checks {
		if c.l == nil {
			return fmt.Errorf("model: %s projection is missing", c.what)
		}
		if c.l.Rows() != c.rows || c.l.Cols() != c.cols {
			return fmt.Errorf("model: %s (%s) is %d×%d, want %d×%d", c.l.Name(), c.what, c.l.Rows(), c.l.Cols(), c.rows, c.cols)
		}
	}
	if len(w.OutNorm) != cfg.Dim {
		return fmt.Errorf("model: output_norm of %d for dim %d", len(w.OutNorm), cfg.Dim)
	}
	return nil
}
