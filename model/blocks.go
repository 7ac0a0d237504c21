package model

import (
	"context"
	"fmt"

	"github.com/terse-llm/terse/kernel"
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
	cache *blockCache
	ids   []int
	pos   []int
}

// NewBlockRunner makes a runner for sequences of up to maxTokens tokens.
func (m *Model) NewBlockRunner(maxTokens int) *BlockRunner {
	maxTokens = max(maxTokens, 1)
	e := m.NewEngine(maxTokens, maxTokens)
	c := &m.Config
	cache := &blockCache{cfg: c, layer: -1, cap: maxTokens, hd: c.HeadDim,
		k: make([]float32, maxTokens*c.MaxLayer().NKVHeads*c.HeadDim)}
	cache.v = make([]float32, len(cache.k))
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
	r.cache.reset(layer)
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
// projection's input. With logits nil it only normalises x and shows obs
// the projection's input, skipping the product (calibration needs the
// input, not the logits).
func (r *BlockRunner) Head(x []float32, n int, logits []float32, obs Observer) error {
	c := &r.e.m.Config
	if n < 1 || n > r.e.maxBatch || len(x) < n*c.Dim || (logits != nil && len(logits) < n*c.VocabSize) {
		return fmt.Errorf("block runner: head over %d tokens (at most %d): buffers too small", n, r.e.maxBatch)
	}
	xb := r.e.xb[:n*c.Dim]
	rmsNorm(xb, x[:n*c.Dim], r.e.m.Weights.OutNorm, c.Dim, c.NormEps)
	if logits == nil {
		if obs != nil {
			out := r.e.m.Weights.Output
			obs.Observe(out.Name(), xb[:n*out.Cols()], n)
		}
		return nil
	}
	r.e.Observer = obs
	err := r.e.matmuls(n, xb, mm{logits, r.e.m.Weights.Output})
	r.e.Observer = nil
	if err != nil {
		return fmt.Errorf("block runner: %w", err)
	}
	return nil
}

// blockCache is the KV cache of a BlockRunner: one layer's keys and values
// at a time (the layer being run), as float32, so a block runner holds one
// layer of cache rather than the whole model's. Attention reads it with the
// same kernels, in the same order, as FloatCache.
type blockCache struct {
	cfg          *Config
	layer        int // the layer held; -1 before the first Run
	cap, hd, len int
	kvDim        int
	k, v         []float32 // cap × kvDim
}

// reset empties the cache for layer.
func (c *blockCache) reset(layer int) {
	c.layer, c.len, c.kvDim = layer, 0, c.cfg.KVDim(layer)
}

func (c *blockCache) check(layer, head, n int) error {
	switch {
	case layer != c.layer:
		return fmt.Errorf("block cache: holds layer %d, not %d", c.layer, layer)
	case head < 0 || (head+1)*c.hd > c.kvDim:
		return fmt.Errorf("block cache: KV head %d of %d", head, c.kvDim/c.hd)
	case n > c.len:
		return fmt.Errorf("block cache: %d positions asked for, %d held", n, c.len)
	}
	return nil
}

// Append implements KVCache.
func (c *blockCache) Append(layer int, k, v []float32) error {
	d := c.kvDim
	switch {
	case layer != c.layer:
		return fmt.Errorf("block cache: holds layer %d, not %d", c.layer, layer)
	case len(k) != d || len(v) != d:
		return fmt.Errorf("block cache: key and value of %d and %d floats, want %d", len(k), len(v), d)
	case c.len >= c.cap:
		return fmt.Errorf("block cache: position %d outside capacity %d", c.len, c.cap)
	}
	copy(c.k[c.len*d:(c.len+1)*d], k)
	copy(c.v[c.len*d:(c.len+1)*d], v)
	c.len++
	return nil
}

// Scores implements KVCache.
func (c *blockCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, _ []float32) error {
	if err := c.check(layer, head, n); err != nil {
		return err
	}
	kernel.Scores(dst, ds, q, qs, nq, c.k[head*c.hd:], c.kvDim, n, c.hd, scale)
	return nil
}

// WeightedSum implements KVCache.
func (c *blockCache) WeightedSum(layer, head int, w, dst []float32, _ []float32) error {
	if err := c.check(layer, head, len(w)); err != nil {
		return err
	}
	kernel.WeightedSum(dst, w, c.v[head*c.hd:], c.kvDim)
	return nil
}

// Truncate implements KVCache.
func (c *blockCache) Truncate(n int) error {
	if n < 0 || n > c.len {
		return fmt.Errorf("block cache: truncate to %d of %d positions", n, c.len)
	}
	c.len = n
	return nil
}

// Len implements KVCache.
func (c *blockCache) Len() int { return c.len }

// Cap implements KVCache.
func (c *blockCache) Cap() int { return c.cap }

// Bytes implements KVCache.
func (c *blockCache) Bytes() int64 { return 4 * int64(len(c.k)+len(c.v)) }

// ScratchSize implements KVCache.
func (c *blockCache) ScratchSize() int { return 0 }
