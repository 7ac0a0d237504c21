package bench

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Shapes of random-weight models for speed tests, by name. "134m" is the
// model llama.cpp was measured on in shared/ANCHORS.md.
var Shapes = map[string]model.Config{
	"134m": {Arch: "llama", Dim: 768, NLayers: 12, NHeads: 12, NKVHeads: 12, HeadDim: 64, FFNDim: 2048,
		VocabSize: 32000, MaxSeqLen: 2048, NormEps: 1e-5, RopeTheta: 10000, BOS: 1, EOS: 2},
	"28m": {Arch: "llama", Dim: 512, NLayers: 8, NHeads: 8, NKVHeads: 2, HeadDim: 64, FFNDim: 1536,
		VocabSize: 4096, MaxSeqLen: 1024, NormEps: 1e-5, RopeTheta: 10000, BOS: 0, EOS: 0},
}

// ShapeNames lists the known shapes.
func ShapeNames() string {
	var n []string
	for k := range Shapes {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// RandomModel builds a model of the named shape with random weights stored
// as dt; the output matrix is stored as outType (llama.cpp keeps it at Q6_K
// in its Q4_0 files). Speed does not depend on the values, only on the types.
func RandomModel(shape string, dt, outType tensor.DType, seed uint64) (*model.Model, error) {
	cfg, ok := Shapes[strings.ToLower(shape)]
	if !ok {
		return nil, fmt.Errorf("unknown model shape %q (known: %s)", shape, ShapeNames())
	}
	tensors := map[string]*tensor.Tensor{}
	var firstErr error
	add := func(name string, rows, cols int, t tensor.DType, seed uint64) {
		data, err := randomMatrix(rows, cols, t, seed)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %w", name, err)
		}
		shape := []int{rows, cols}
		if rows == 1 {
			shape = []int{cols}
		}
		tensors[name] = &tensor.Tensor{Name: name, DType: t, Shape: shape, Data: data}
	}
	qDim, kvDim := cfg.NHeads*cfg.HeadDim, cfg.NKVHeads*cfg.HeadDim
	add("token_embd.weight", cfg.VocabSize, cfg.Dim, dt, seed)
	add("output.weight", cfg.VocabSize, cfg.Dim, outType, seed+1)
	add("output_norm.weight", 1, cfg.Dim, tensor.F32, seed+2)
	for l := 0; l < cfg.NLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		s := seed + uint64(100*(l+1))
		add(p+"attn_norm.weight", 1, cfg.Dim, tensor.F32, s)
		add(p+"ffn_norm.weight", 1, cfg.Dim, tensor.F32, s+1)
		add(p+"attn_q.weight", qDim, cfg.Dim, dt, s+2)
		add(p+"attn_k.weight", kvDim, cfg.Dim, dt, s+3)
		add(p+"attn_v.weight", kvDim, cfg.Dim, dt, s+4)
		add(p+"attn_output.weight", cfg.Dim, qDim, dt, s+5)
		add(p+"ffn_gate.weight", cfg.FFNDim, cfg.Dim, dt, s+6)
		add(p+"ffn_up.weight", cfg.FFNDim, cfg.Dim, dt, s+7)
		add(p+"ffn_down.weight", cfg.Dim, cfg.FFNDim, dt, s+8)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return model.Load(cfg, func(name string) (*tensor.Tensor, bool, error) {
		t, ok := tensors[name]
		return t, ok, nil
	})
}

// randomMatrix fills rows×cols with N(0, 0.02²) values (norm weights near 1)
// and stores them as dt, quantizing rows in parallel.
func randomMatrix(rows, cols int, dt tensor.DType, seed uint64) ([]byte, error) {
	rb, err := dt.RowBytes(cols)
	if err != nil {
		return nil, err
	}
	out := make([]byte, rows*rb)
	var firstErr error
	kernel.Parallel(rows, func(lo, hi int) {
		rng := rand.New(rand.NewPCG(seed, uint64(lo)))
		row := make([]float32, cols)
		for r := lo; r < hi; r++ {
			for i := range row {
				if rows == 1 {
					row[i] = 1 + 0.1*float32(rng.NormFloat64())
				} else {
					row[i] = 0.02 * float32(rng.NormFloat64())
				}
			}
			if err := ggml.Quantize(dt, row, out[r*rb:(r+1)*rb], nil); err != nil && firstErr == nil {
				firstErr = err
				return
			}
		}
	})
	return out, firstErr
}
