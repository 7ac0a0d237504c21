package model

import (
	"context"
	"fmt"
	"math"

	"github.com/terse-llm/terse/kernel"
)

// KVWriter is an optional interface of a KVCache that can overwrite the
// key and value of a position it already holds. Selective recomputation
// (Cache-Craft, CacheBlend) needs it: a sequence assembled from KV computed
// elsewhere has some of its positions recomputed in place.
type KVWriter interface {
	// SetKV replaces the key and value (the layer's KV width each) of
	// position pos < Len() of layer.
	SetKV(layer, pos int, k, v []float32) error
}

// SetKV implements KVWriter.
func (c *FloatCache) SetKV(layer, pos int, k, v []float32) error {
	if layer < 0 || layer >= len(c.k) {
		return fmt.Errorf("kv cache: layer %d of %d", layer, len(c.k))
	}
	d := c.kvDim[layer]
	if pos < 0 || pos >= c.lens[layer] {
		return fmt.Errorf("kv cache: layer %d: position %d of %d held", layer, pos, c.lens[layer])
	}
	if len(k) != d || len(v) != d {
		return fmt.Errorf("kv cache: layer %d: key and value of %d and %d floats, want %d", layer, len(k), len(v), d)
	}
	copy(c.k[layer][pos*d:(pos+1)*d], k)
	copy(c.v[layer][pos*d:(pos+1)*d], v)
	return nil
}

// Recompute runs a batch like Forward, except that a token may also take a
// position its sequence already holds: layer by layer, its key and value
// overwrite that position's (the cache must implement KVWriter), and its
// query attends to the positions before it as they are then, including
// those overwritten by earlier tokens of the batch in the same layer.
// Tokens at positions at or past the sequence's length append, as in
// Forward. Each sequence's positions must increase strictly, and those
// past its length must continue it without gaps.
//
// Recomputing every position of a sequence in order gives what a cold
// prefill of the same tokens gives, whatever the cache held before. On an
// error or cancellation the appended positions are dropped, as in Forward,
// but the overwritten ones of the failed piece may hold new keys and
// values in some layers: discard the sequence.
func (e *Engine) Recompute(ctx context.Context, b Batch, out []float32) error {
	if len(b.Seqs) != len(b.Pos) {
		return fmt.Errorf("recompute: %d sequence ids and %d positions", len(b.Seqs), len(b.Pos))
	}
	last := map[int]int{}
	for t, id := range b.Seqs {
		s := e.seqs[id]
		if s == nil {
			return fmt.Errorf("recompute: token %d: no sequence %d", t, id)
		}
		p := b.Pos[t]
		if prev, ok := last[id]; (ok && p <= prev) || p < 0 {
			return fmt.Errorf("recompute: token %d: position %d of sequence %d does not follow %d", t, p, id, prev)
		}
		last[id] = p
		if p < s.cache.Len() {
			if _, ok := s.cache.(KVWriter); !ok {
				return fmt.Errorf("recompute: sequence %d: a %T cannot overwrite position %d", id, s.cache, p)
			}
		}
	}
	e.overwrite = true
	defer func() { e.overwrite = false }()
	return e.Forward(ctx, b, out)
}

// resolveOverwrite is resolve for Recompute: a token below its sequence's
// length at the start of the piece overwrites; the rest append in order.
func (e *Engine) resolveOverwrite(b Batch) error {
	e.gen++
	e.runs = e.runs[:0]
	for t, id := range b.Seqs {
		s := e.seqs[id]
		if s == nil {
			return fmt.Errorf("recompute: token %d: no sequence %d", t, id)
		}
		if s.gen != e.gen {
			s.gen, s.start = e.gen, s.cache.Len()
			s.next = s.start
		}
		p := b.Pos[t]
		if p >= s.start && p != s.next {
			return fmt.Errorf("recompute: token %d: sequence %d is at position %d, not %d", t, id, s.next, p)
		}
		if p >= e.ctx || p >= s.cache.Cap() {
			return fmt.Errorf("recompute: %d positions exceed the context of %d", p+1, min(e.ctx, s.cache.Cap()))
		}
		if p >= s.start {
			s.next++
		}
		e.tokSeq[t], e.tokPos[t] = s, p
		if r := len(e.runs) - 1; r >= 0 && e.runs[r].seq == s && e.runs[r].pos+e.runs[r].n == p && e.runs[r].t0+e.runs[r].n == t {
			e.runs[r].n++
			continue
		}
		e.runs = append(e.runs, run{seq: s, t0: t, n: 1, pos: p})
	}
	return nil
}

// storeKV puts token t's key and value of layer li into its sequence's
// cache: appended, or written over a held position during Recompute.
func (e *Engine) storeKV(li, t, p int, k, v []float32) error {
	s := e.tokSeq[t]
	if p >= s.start {
		return s.cache.Append(li, k, v)
	}
	w, ok := s.cache.(KVWriter)
	if !ok {
		return fmt.Errorf("a %T cannot overwrite position %d", s.cache, p)
	}
	return w.SetKV(li, p, k, v)
}

// Recompute is Engine.Recompute for the state's sequence: tokens at
// positions pos (increasing; those at or past Pos() continue it), with
// next-token logits into out for the tokens logits selects (nil: every
// token's), in order.
func (s *State) Recompute(ctx context.Context, tokens, pos []int, logits []bool, out []float32) error {
	ids := make([]int, len(tokens))
	return s.e.Recompute(ctx, Batch{Tokens: tokens, Seqs: ids, Pos: pos, Logits: logits}, out)
}

// FirstLayerAttention computes the first layer's attention of tokens at
// positions pos of sequence id, whose first-layer keys the cache already
// holds for every position up to each token's: for token i it calls
// f(i, w) with the weights of its query over positions 0..pos[i], averaged
// over the query heads (w is reused after f returns). The first layer's
// queries depend on the token and position alone, so these weights are
// exact whatever the rest of the cache holds; Cache-Craft's and
// CacheBlend's token selection read them. It changes nothing.
func (e *Engine) FirstLayerAttention(ctx context.Context, id int, tokens, pos []int, f func(i int, w []float32)) error {
	c := &e.m.Config
	s := e.seqs[id]
	if s == nil {
		return fmt.Errorf("attention probe: no sequence %d", id)
	}
	if len(tokens) != len(pos) {
		return fmt.Errorf("attention probe: %d tokens and %d positions", len(tokens), len(pos))
	}
	for i, p := range pos {
		if p < 0 || p >= s.cache.Len() || p >= e.ctx {
			return fmt.Errorf("attention probe: token %d: position %d of %d held", i, p, s.cache.Len())
		}
	}
	l := &e.m.Weights.Layers[0]
	ls := c.Layer(0)
	dim, hd, qDim := c.Dim, c.HeadDim, c.QDim(0)
	group := ls.NHeads / ls.NKVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	row := e.scores[:e.ctx]
	avg := make([]float32, e.ctx)
	scratch := e.kvScratch[0]
	for start := 0; start < len(tokens); start += e.maxBatch {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(start+e.maxBatch, len(tokens))
		n := end - start
		x, xb, q := e.x[:n*dim], e.xb[:n*dim], e.q[:n*qDim]
		if err := e.m.Embed(tokens[start:end], x); err != nil {
			return fmt.Errorf("attention probe: %w", err)
		}
		rmsNorm(xb, x, l.AttnNorm, dim, c.NormEps)
		if err := e.matmuls(n, xb, mm{q, l.Wq}); err != nil {
			return fmt.Errorf("attention probe: %w", err)
		}
		for t := 0; t < n; t++ {
			p := pos[start+t]
			qt := q[t*qDim : (t+1)*qDim]
			e.rope.apply(qt, p, hd, c.RopeStyle)
			w := avg[:p+1]
			clear(w)
			for h := 0; h < ls.NHeads; h++ {
				r := row[:p+1]
				if err := s.cache.Scores(0, h/group, qt[h*hd:], qDim, 1, p+1, scale, r, len(r), scratch); err != nil {
					return fmt.Errorf("attention probe: head %d: %w", h, err)
				}
				inv := 1 / kernel.Softmax(r) / float32(ls.NHeads)
				for j, v := range r {
					w[j] += v * inv
				}
			}
			f(start+t, w)
		}
	}
	return nil
}

// FirstLayerAttention is Engine.FirstLayerAttention for the state's
// sequence.
func (s *State) FirstLayerAttention(ctx context.Context, tokens, pos []int, f func(i int, w []float32)) error {
	return s.e.FirstLayerAttention(ctx, 0, tokens, pos, f)
}
