package model

import (
	"context"
	"fmt"
)

// BlockRunner runs a model one transformer block at a time over one
// sequence of activations, for layer-by-layer calibration: embed the
// tokens (Model.Embed), run block 0 over them in place, collect what it
// saw, run block 1 over its output, and so on, then the final norm and
// output head. Memory is one block's scratch and one layer of KV cache
// instead of the whole model's statistics at once; the inputs a block sees
// may come from earlier blocks compressed or not. Embed, every block in
// turn and Head compute exactly what Forward does over the same tokens in
// one piece.
type BlockRunner struct {
	e     *Engine
	seq   *Seq
	cache *FloatCache
	ids   []int
	pos   []int
}

// NewBlockRunner makes a runner for sequences of up to maxTokens tokens.
func (m *Model) NewBlockRunner(maxTokens int) *BlockRunner {
	maxTokens = max(maxTokens, 1)
	e := m.NewEngine(maxTokens, maxTokens)
	cache := m.NewCache(maxTokens)
	seq, _ := e.AddSeq(0, cache) // a fresh engine has no sequence 0
	r := &BlockRunner{e: e, seq: seq, cache: cache, ids: make([]int, maxTokens), pos: make([]int, maxTokens)}
	for i := range r.pos {
		r.pos[i] = i
	}
	return r
}

// Run applies block layer to the n activations x (n × Dim, positions 0 to
// n−1), in place, with obs (when not nil) seeing the inputs of the block's
// projections. It returns ctx.Err() when ctx is done before it starts.
func (r *BlockRunner) Run(ctx context.Context, layer int, x []float32, n int, obs Observer) error {
	c := &r.e.m.Config
	if layer < 0 || layer >= c.NLayers {
		return fmt.Errorf("block runner: layer %d of %d", layer, c.NLayers)
	}
	if n < 1 || n > r.e.maxBatch || len(x) < n*c.Dim {
		return fmt.Errorf("block runner: %d tokens (at most %d) with %d floats of activations", n, r.e.maxBatch, len(x))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.cache.Truncate(0); err != nil {
		return err
	}
	if err := r.e.resolve(Batch{Seqs: r.ids[:n], Pos: r.pos[:n]}); err != nil {
		return err
	}
	r.e.Observer = obs
	err := r.e.block(layer, x[:n*c.Dim], n)
	r.e.Observer = nil
	clear(r.e.tokSeq[:n])
	if err != nil {
		return fmt.Errorf("block runner: %w", err)
	}
	return nil
}

// Head applies the final norm and output projection to the n activations
// x, writing n × VocabSize logits, with obs (when not nil) seeing the
// projection's input.
func (r *BlockRunner) Head(x []float32, n int, logits []float32, obs Observer) error {
	c := &r.e.m.Config
	if n < 1 || n > r.e.maxBatch || len(x) < n*c.Dim || len(logits) < n*c.VocabSize {
		return fmt.Errorf("block runner: head over %d tokens (at most %d): buffers too small", n, r.e.maxBatch)
	}
	xb := r.e.xb[:n*c.Dim]
	rmsNorm(xb, x[:n*c.Dim], r.e.m.Weights.OutNorm, c.Dim, c.NormEps)
	r.e.Observer = obs
	err := r.e.matmuls(n, xb, mm{logits, r.e.m.Weights.Output})
	r.e.Observer = nil
	if err != nil {
		return fmt.Errorf("block runner: %w", err)
	}
	return nil
}
