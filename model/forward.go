package model

import (
	"fmt"
	"math"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// State is one running sequence: its KV cache, its position and the scratch
// buffers the forward pass reuses, so decoding allocates nothing per token.
type State struct {
	m        *Model
	Cache    KVCache
	pos      int
	maxBatch int
	rope     *ropeTable

	x, xb, q, k, v, att, o []float32 // maxBatch × width
	gate, up               []float32 // maxBatch × FFNDim
	scores                 []float32 // NHeads × attnQueries × Cap

	mmOuts [3][]float32 // matmuls' arguments to kernel.MatMulMulti
	mmWs   [3]*tensor.Tensor

	attnLayer, attnN int
	attnHeads        func(lo, hi int)

	// Observer, when set, sees the input of every weight-matrix product
	// (calibration collects importance and Hessians through it).
	Observer Observer
}

// Observer receives the n input vectors that are about to be multiplied by
// the projection named name (x is n × its Cols() floats, row-major). x must
// not be kept or modified after Observe returns.
type Observer interface {
	Observe(name string, x []float32, n int)
}

// NewState makes a sequence of up to ctx positions with a float32 KV cache,
// feeding at most maxBatch tokens per Forward call.
func (m *Model) NewState(ctx, maxBatch int) *State {
	c := &m.Config
	return m.NewStateWithCache(NewFloatCache(c, ctx), maxBatch)
}

// NewStateWithCache is NewState over a caller's KV cache.
func (m *Model) NewStateWithCache(cache KVCache, maxBatch int) *State {
	c := &m.Config
	if maxBatch < 1 {
		maxBatch = 1
	}
	ml := c.MaxLayer()
	qDim, kvDim := ml.NHeads*c.HeadDim, ml.NKVHeads*c.HeadDim
	f := func(n int) []float32 { return make([]float32, maxBatch*n) }
	s := &State{
		m: m, Cache: cache, maxBatch: maxBatch,
		rope: newRopeTable(c, cache.Cap()),
		x:    f(c.Dim), xb: f(c.Dim), o: f(c.Dim),
		q: f(qDim), att: f(qDim), k: f(kvDim), v: f(kvDim),
		gate: f(ml.FFNDim), up: f(ml.FFNDim),
		scores: make([]float32, ml.NHeads*attnQueries*cache.Cap()),
	}
	s.attnHeads = s.attnHeadsRange
	return s
}

// Pos is the number of positions already in the cache.
func (s *State) Pos() int { return s.pos }

// Reset empties the sequence (the cache is overwritten as it refills).
func (s *State) Reset() { s.pos = 0 }

// Forward runs tokens at the next positions of the sequence. With all, out
// receives len(tokens)×VocabSize logits (row t predicts the token after
// tokens[t]); otherwise only the last token's VocabSize logits. Longer inputs
// than the batch size are fed in pieces.
func (s *State) Forward(tokens []int, out []float32, all bool) error {
	c := &s.m.Config
	if len(tokens) == 0 {
		return fmt.Errorf("forward: no tokens")
	}
	if s.pos+len(tokens) > s.Cache.Cap() {
		return fmt.Errorf("forward: %d positions exceed the context of %d", s.pos+len(tokens), s.Cache.Cap())
	}
	need := c.VocabSize
	if all {
		need *= len(tokens)
	}
	if len(out) < need {
		return fmt.Errorf("forward: logits buffer holds %d floats, need %d", len(out), need)
	}
	for i, id := range tokens {
		if id < 0 || id >= c.VocabSize {
			return fmt.Errorf("forward: token %d at index %d is outside the vocabulary of %d", id, i, c.VocabSize)
		}
	}
	for start := 0; start < len(tokens); start += s.maxBatch {
		end := min(start+s.maxBatch, len(tokens))
		var dst []float32
		switch {
		case all:
			dst = out[start*c.VocabSize : end*c.VocabSize]
		case end == len(tokens):
			dst = out[:c.VocabSize]
		}
		if err := s.batch(tokens[start:end], dst, all); err != nil {
			return err
		}
	}
	return nil
}

// batch is the forward pass over n ≤ maxBatch tokens.
func (s *State) batch(tokens []int, out []float32, all bool) error {
	m, c := s.m, &s.m.Config
	w := m.Weights
	n, dim := len(tokens), c.Dim
	x, xb := s.x[:n*dim], s.xb[:n*dim]

	for t, id := range tokens {
		dst := x[t*dim : (t+1)*dim]
		if d := w.TokEmbd.Decoder; d != nil {
			if err := d.DecodeRow(id, dst); err != nil {
				return fmt.Errorf("forward: token_embd: %w", err)
			}
			continue
		}
		if err := ggml.Dequantize(w.TokEmbd.DType, w.TokEmbd.Row(id), dst); err != nil {
			return fmt.Errorf("forward: token_embd: %w", err)
		}
	}
	for li := range w.Layers {
		l := &w.Layers[li]
		qDim, kvDim, ffn := c.QDim(li), c.KVDim(li), c.Layer(li).FFNDim

		// Attention.
		rmsNorm(xb, x, l.AttnNorm, dim, c.NormEps)
		q, k, v := s.q[:n*qDim], s.k[:n*kvDim], s.v[:n*kvDim]
		if err := s.matmuls(n, xb, mm{q, l.Wq}, mm{k, l.Wk}, mm{v, l.Wv}); err != nil {
			return err
		}
		for t := 0; t < n; t++ {
			p := s.pos + t
			s.rope.apply(q[t*qDim:(t+1)*qDim], p, c.HeadDim, c.RopeStyle)
			s.rope.apply(k[t*kvDim:(t+1)*kvDim], p, c.HeadDim, c.RopeStyle)
			s.Cache.Put(li, p, k[t*kvDim:(t+1)*kvDim], v[t*kvDim:(t+1)*kvDim])
		}
		s.attention(li, n)
		o := s.o[:n*dim]
		if err := s.matmuls(n, s.att[:n*qDim], mm{o, l.Wo}); err != nil {
			return err
		}
		add(x, o)

		// Feed-forward (SwiGLU).
		rmsNorm(xb, x, l.FFNNorm, dim, c.NormEps)
		g, u := s.gate[:n*ffn], s.up[:n*ffn]
		if err := s.matmuls(n, xb, mm{g, l.Gate}, mm{u, l.Up}); err != nil {
			return err
		}
		swiglu(g, u)
		if err := s.matmuls(n, g, mm{o, l.Down}); err != nil {
			return err
		}
		add(x, o)
	}

	// Final norm and classifier, for every token or only the last.
	first := 0
	if !all {
		if out == nil {
			s.pos += n
			return nil
		}
		first = n - 1
	}
	rmsNorm(xb[first*dim:n*dim], x[first*dim:n*dim], w.OutNorm, dim, c.NormEps)
	if err := s.matmuls(n-first, xb[first*dim:n*dim], mm{out, w.Output}); err != nil {
		return err
	}
	s.pos += n
	return nil
}

// attention computes softmax(q·kᵀ/√d)·v for every head of the n newest
// tokens, causally, into s.att. Heads are spread across cores.
func (s *State) attention(layer, n int) {
	s.attnLayer, s.attnN = layer, n
	kernel.Parallel(s.m.Config.Layer(layer).NHeads, s.attnHeads)
}

// attnQueries is how many queries of a head attention scores together (one
// pass over the keys for all of them, through the matrix micro-kernel).
const attnQueries = 4

// attnHeads is attention for heads [lo, hi); it is bound once per State so
// that handing it to the pool allocates nothing.
func (s *State) attnHeadsRange(lo, hi int) {
	c := &s.m.Config
	layer, n := s.attnLayer, s.attnN
	ls := c.Layer(layer)
	hd, qDim, kvDim := c.HeadDim, c.QDim(layer), c.KVDim(layer)
	group := ls.NHeads / ls.NKVHeads
	total := s.pos + n
	keys, vals := s.Cache.Keys(layer, total), s.Cache.Values(layer, total)
	scale := float32(1 / math.Sqrt(float64(hd)))
	capacity := s.Cache.Cap()
	for h := lo; h < hi; h++ {
		kvOff := (h / group) * hd
		sc := s.scores[h*attnQueries*capacity : (h+1)*attnQueries*capacity]
		for t0 := 0; t0 < n; t0 += attnQueries {
			nq := min(attnQueries, n-t0)
			// Scores up to the last query's span; earlier queries ignore
			// the positions past their own.
			kernel.Scores(sc, capacity, s.q[t0*qDim+h*hd:], qDim, nq,
				keys[kvOff:], kvDim, s.pos+t0+nq, hd, scale)
			for i := 0; i < nq; i++ {
				row := sc[i*capacity : i*capacity+s.pos+t0+i+1]
				inv := 1 / kernel.Softmax(row)
				dst := s.att[(t0+i)*qDim+h*hd : (t0+i)*qDim+(h+1)*hd]
				kernel.WeightedSum(dst, row, vals[kvOff:], kvDim)
				for j := range dst {
					dst[j] *= inv
				}
			}
		}
	}
}

// mm is one projection: out = x·Wᵀ (+ bias).
type mm struct {
	out []float32
	w   Linear
}

// matmuls runs projections that share their input x. Several dense ones
// (each possibly with a bias) go to kernel.MatMulMulti, which quantizes x
// once and splits all their rows across the cores as one job (q, k and v;
// gate and up); anything else multiplies itself.
func (s *State) matmuls(n int, x []float32, ops ...mm) error {
	multi := s.Observer == nil && len(ops) > 1 && len(ops) <= len(s.mmWs)
	for i := 0; multi && i < len(ops); i++ {
		l := ops[i].w
		if b, ok := l.(*Biased); ok {
			l = b.Base
		}
		d, ok := l.(*Dense)
		if !ok {
			multi = false
			break
		}
		s.mmOuts[i], s.mmWs[i] = ops[i].out, d.W
	}
	if multi {
		err := kernel.MatMulMulti(x, n, s.mmOuts[:len(ops)], s.mmWs[:len(ops)])
		clear(s.mmOuts[:])
		clear(s.mmWs[:])
		if err != nil {
			return err
		}
		for _, op := range ops {
			if b := BiasOf(op.w); b != nil {
				addRows(op.out, b, n)
			}
		}
		return nil
	}
	clear(s.mmOuts[:])
	clear(s.mmWs[:])
	for _, op := range ops {
		if s.Observer != nil {
			s.Observer.Observe(op.w.Name(), x[:n*op.w.Cols()], n)
		}
		if err := op.w.MatMul(op.out, x, n); err != nil {
			return err
		}
	}
	return nil
}

// rmsNorm writes x / rms(x) · w for each dim-long row of x into dst.
func rmsNorm(dst, x, w []float32, dim int, eps float64) {
	for r := 0; r+dim <= len(x); r += dim {
		row := x[r : r+dim]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(ss/float64(dim)+eps))
		d := dst[r : r+dim]
		for i, v := range row {
			d[i] = (v * inv) * w[i]
		}
	}
}

// swiglu sets g = silu(g) · u.
func swiglu(g, u []float32) { kernel.SiLUMul(g, u) }

func add(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}
