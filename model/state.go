package model

import (
	"context"
	"fmt"
)

// State is the single-sequence convenience over an Engine: one sequence
// whose tokens are fed at its next positions.
type State struct {
	e        *Engine
	seq      *Seq
	maxBatch int
	ids, pos []int  // a piece's sequence ids (all 0) and positions
	flags    []bool // a piece's logit selection

	// Observer, when set, sees the input of every projection.
	Observer Observer
}

// NewState makes a sequence of up to ctx positions with a float32 KV cache,
// feeding at most maxBatch tokens per pass.
func (m *Model) NewState(ctx, maxBatch int) *State {
	return m.NewStateWithCache(m.NewCache(ctx), maxBatch)
}

// NewStateWithCache is NewState over a caller's KV cache.
func (m *Model) NewStateWithCache(cache KVCache, maxBatch int) *State {
	maxBatch = max(maxBatch, 1)
	e := m.NewEngine(cache.Cap(), maxBatch)
	seq, _ := e.AddSeq(0, cache) // a fresh engine has no sequence 0
	return &State{e: e, seq: seq, maxBatch: maxBatch,
		ids: make([]int, maxBatch), pos: make([]int, maxBatch), flags: make([]bool, maxBatch)}
}

// Pos is the number of positions already in the cache.
func (s *State) Pos() int { return s.seq.Len() }

// Cache is the sequence's KV cache.
func (s *State) Cache() KVCache { return s.seq.cache }

// Reset empties the sequence (the cache is overwritten as it refills).
func (s *State) Reset() { _ = s.seq.Truncate(0) }

// Seek rewinds the sequence to its first pos positions: the next token goes
// to position pos, attending to the cached prefix.
func (s *State) Seek(pos int) error { return s.seq.Truncate(pos) }

// Forward is ForwardContext without cancellation.
func (s *State) Forward(tokens []int, out []float32, all bool) error {
	return s.ForwardContext(context.Background(), tokens, out, all)
}

// ForwardContext runs tokens at the next positions of the sequence. With
// all, out receives len(tokens)×VocabSize logits (row t predicts the token
// after tokens[t]); otherwise only the last token's VocabSize logits.
// Longer inputs than the batch size are fed in pieces. When ctx is done it
// returns ctx.Err(), keeping the pieces already run.
func (s *State) ForwardContext(ctx context.Context, tokens []int, out []float32, all bool) error {
	c := &s.e.m.Config
	if len(tokens) == 0 {
		return fmt.Errorf("forward: no tokens")
	}
	if p := s.Pos() + len(tokens); p > s.seq.cache.Cap() {
		return fmt.Errorf("forward: %d positions exceed the context of %d", p, s.seq.cache.Cap())
	}
	need := c.VocabSize
	if all {
		need *= len(tokens)
	}
	if len(out) < need {
		return fmt.Errorf("forward: logits buffer holds %d floats, need %d", len(out), need)
	}
	s.e.Observer = s.Observer
	defer func() { s.e.Observer = nil }()
	for start := 0; start < len(tokens); start += s.maxBatch {
		end := min(start+s.maxBatch, len(tokens))
		n, p0 := end-start, s.Pos()
		for i := 0; i < n; i++ {
			s.pos[i] = p0 + i
			s.flags[i] = all || (end == len(tokens) && i == n-1)
		}
		var dst []float32
		switch {
		case all:
			dst = out[start*c.VocabSize : end*c.VocabSize]
		case end == len(tokens):
			dst = out[:c.VocabSize]
		}
		b := Batch{Tokens: tokens[start:end], Seqs: s.ids[:n], Pos: s.pos[:n], Logits: s.flags[:n]}
		if err := s.e.Forward(ctx, b, dst); err != nil {
			return err
		}
	}
	return nil
}
