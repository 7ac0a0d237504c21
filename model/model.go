// Package model is the Llama-block transformer: its configuration, its
// weights under canonical names, and the forward pass (RMSNorm, RoPE,
// grouped-query attention, SwiGLU, optional q/k/v biases, tied embeddings)
// over float32 activations. Llama, Mistral, Qwen2 and llama2.c checkpoints
// differ only in Config and weight names, so there is one forward pass,
// readable in one sitting, in forward.go.
//
// The seams, where what comes next plugs in:
//
//   - Linear (linear.go): every projection is a value that multiplies
//     itself. Dense wraps a tensor in its stored type (float, ggml blocks,
//     codebook-decoded); Biased, LowRank (y = W·x + B·(A·x)) and Sparse
//     (CSR) are the others. The forward pass knows nothing else of
//     weights; dense projections that share an input still go to
//     kernel.MatMulMulti as one job. DenseTensor and Weights.Matrices give
//     converters the tensors back.
//   - Config.Layers (config.go): heads, KV heads and FFN width may differ
//     per layer (structured pruning); Config.Layer(i) is a block's shape.
//   - KVCache (kvcache.go): a sequence's cache takes part in attention — it
//     appends keys and values, scores queries against its own stored form
//     and sums its values, for one KV head per call, safely from
//     concurrent heads with caller-supplied scratch, and reports errors.
//     FloatCache is the exact float32 one.
//   - Engine (forward.go): the forward pass over a Batch of tokens, each
//     with a sequence id and position, so one pass advances many
//     sequences, each with its own cache; a context.Context cancels it
//     between layers. State (state.go) is the one-sequence convenience and
//     Runner scores whole sequences for eval.
//   - BlockRunner (blocks.go): Embed, one block at a time over a
//     sequence's activations, then Head, for layer-by-layer calibration;
//     Observer sees the inputs of every projection by name.
package model

import (
	"fmt"

	"github.com/terse-llm/terse/tensor"
)

// Model is a configuration with its weights, ready to run.
type Model struct {
	Config  Config
	Weights *Weights
}

// New checks cfg and pairs it with w.
func New(cfg Config, w *Weights) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(w.Layers) != cfg.NLayers {
		return nil, fmt.Errorf("model: %d layers of weights for %d configured", len(w.Layers), cfg.NLayers)
	}
	if err := w.check(&cfg); err != nil {
		return nil, err
	}
	return &Model{Config: cfg, Weights: w}, nil
}

// Load builds a model from cfg and the tensors src finds.
func Load(cfg Config, src TensorSource) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, err := LoadWeights(&cfg, src)
	if err != nil {
		return nil, err
	}
	return New(cfg, w)
}

// NumParams counts the elements of every weight (the tied output once).
func (m *Model) NumParams() int64 {
	var n int64
	for _, t := range m.Weights.Matrices() {
		n += int64(t.NumElements())
	}
	c := &m.Config
	n += int64(c.Dim) * int64(2*c.NLayers+1) // norms
	for _, l := range m.Weights.Linears() {
		n += int64(len(BiasOf(l)))
	}
	return n
}

// WeightBytes is the stored size of the weight matrices: the embedding and
// every projection (the tied output once).
func (m *Model) WeightBytes() int64 {
	w := m.Weights
	n := int64(len(w.TokEmbd.Data))
	for _, l := range w.Linears() {
		if t, ok := DenseTensor(l); ok {
			if t != w.TokEmbd {
				n += int64(len(t.Data))
			}
			continue
		}
		n += l.Bytes()
	}
	return n
}

// Matrix is one weight matrix with its canonical name, for inspection.
type Matrix = tensor.Tensor
