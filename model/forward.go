package model

import (
	"context"
	"fmt"
	"math"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Observer receives the n input vectors that are about to be multiplied by
// the projection named name (x is n × its Cols() floats, row-major). x must
// not be kept or modified after Observe returns.
type Observer interface {
	Observe(name string, x []float32, n int)
}

// Batch is one step of work for an Engine: token i is fed to sequence
// Seqs[i] at position Pos[i]. A sequence's tokens come in increasing
// positions, the first at the sequence's Len() (positions are never
// skipped; Seq.Truncate rewinds). Logits, when not nil, selects the tokens
// whose next-token logits are wanted; nil wants every token's.
type Batch struct {
	Tokens []int
	Seqs   []int
	Pos    []int
	Logits []bool
}

// Seq is one sequence of an Engine: an id and its own KV cache.
type Seq struct {
	id    int
	cache KVCache

	gen         uint64 // the piece that last resolved this sequence
	start, next int    // its length before that piece, and the next position
}

// ID is the sequence's id.
func (s *Seq) ID() int { return s.id }

// Len is the number of positions the sequence holds (the position its next
// token takes).
func (s *Seq) Len() int { return s.cache.Len() }

// Cache is the sequence's KV cache.
func (s *Seq) Cache() KVCache { return s.cache }

// Truncate rewinds the sequence to its first n positions, so that the next
// token goes to position n and reuses the cached prefix.
func (s *Seq) Truncate(n int) error {
	if err := s.cache.Truncate(n); err != nil {
		return fmt.Errorf("sequence %d: %w", s.id, err)
	}
	return nil
}

// run is a span of consecutive tokens of one sequence at consecutive
// positions: attention scores its queries in blocks.
type run struct {
	seq   *Seq
	t0, n int // first token of the piece, token count
	pos   int // position of the first token
}

// Engine runs the forward pass over batches of tokens from many sequences,
// each with its own KV cache, reusing its scratch buffers so that a decode
// step allocates nothing. An Engine is not safe for concurrent use; its
// attention spreads heads across the kernel pool.
type Engine struct {
	m        *Model
	ctx      int // positions the RoPE table and score buffers cover
	maxBatch int
	rope     *ropeTable
	seqs     map[int]*Seq

	x, xb, q, k, v, att, o []float32 // maxBatch × width
	gate, up               []float32 // maxBatch × FFN width
	scores                 []float32 // heads × attnQueries × ctx
	kvScratch              [][]float32
	headErr                []error

	mmOuts [3][]float32 // matmuls' arguments to kernel.MatMulMulti
	mmWs   [3]*tensor.Tensor

	// The piece being run.
	gen       uint64
	tokSeq    []*Seq
	tokPos    []int
	runs      []run
	attnLayer int
	attnHeads func(lo, hi int)
	overwrite bool // within Recompute: tokens may take held positions

	// Observer, when set, sees the input of every projection (calibration
	// collects importance and Hessians through it).
	Observer Observer
}

// NewEngine makes an engine for sequences of up to ctx positions, feeding
// at most maxBatch tokens per pass (longer batches are run in pieces).
func (m *Model) NewEngine(ctx, maxBatch int) *Engine {
	c := &m.Config
	maxBatch = max(maxBatch, 1)
	ctx = max(ctx, 1)
	ml := c.MaxLayer()
	qDim, kvDim := ml.NHeads*c.HeadDim, ml.NKVHeads*c.HeadDim
	f := func(n int) []float32 { return make([]float32, maxBatch*n) }
	e := &Engine{
		m: m, ctx: ctx, maxBatch: maxBatch,
		rope: newRopeTable(c, ctx),
		seqs: map[int]*Seq{},
		x:    f(c.Dim), xb: f(c.Dim), o: f(c.Dim),
		q: f(qDim), att: f(qDim), k: f(kvDim), v: f(kvDim),
		gate: f(ml.FFNDim), up: f(ml.FFNDim),
		scores:    make([]float32, ml.NHeads*attnQueries*ctx),
		kvScratch: make([][]float32, ml.NHeads),
		headErr:   make([]error, ml.NHeads),
		tokSeq:    make([]*Seq, maxBatch),
		tokPos:    make([]int, maxBatch),
		runs:      make([]run, 0, maxBatch),
	}
	e.attnHeads = e.attnHeadsRange
	return e
}

// NewCache makes a float32 KV cache of positions for m.
func (m *Model) NewCache(positions int) *FloatCache { return NewFloatCache(&m.Config, positions) }

// AddSeq adds sequence id over cache (nil: a float32 cache of the engine's
// context).
func (e *Engine) AddSeq(id int, cache KVCache) (*Seq, error) {
	if _, dup := e.seqs[id]; dup {
		return nil, fmt.Errorf("engine: sequence %d already exists", id)
	}
	if cache == nil {
		cache = e.m.NewCache(e.ctx)
	}
	for h := range e.kvScratch {
		if n := cache.ScratchSize(); len(e.kvScratch[h]) < n {
			e.kvScratch[h] = make([]float32, n)
		}
	}
	s := &Seq{id: id, cache: cache}
	e.seqs[id] = s
	return s, nil
}

// RemoveSeq drops sequence id (its cache is the caller's to reuse).
func (e *Engine) RemoveSeq(id int) { delete(e.seqs, id) }

// Seq returns sequence id, or nil.
func (e *Engine) Seq(id int) *Seq { return e.seqs[id] }

// Forward runs a batch. out receives VocabSize logits for each token that
// b.Logits selects (every token when nil), in batch order. A batch longer
// than the engine's maxBatch is run in pieces; ctx is checked between
// layers, and when it is done Forward returns ctx.Err() and the sequences
// of the unfinished piece keep the positions they had before it.
func (e *Engine) Forward(ctx context.Context, b Batch, out []float32) error {
	c := &e.m.Config
	n := len(b.Tokens)
	if n == 0 {
		return fmt.Errorf("forward: no tokens")
	}
	if len(b.Seqs) != n || len(b.Pos) != n || (b.Logits != nil && len(b.Logits) != n) {
		return fmt.Errorf("forward: %d tokens with %d sequence ids, %d positions and %d logit flags",
			n, len(b.Seqs), len(b.Pos), len(b.Logits))
	}
	need := 0
	for i, id := range b.Tokens {
		if id < 0 || id >= c.VocabSize {
			return fmt.Errorf("forward: token %d at index %d is outside the vocabulary of %d", id, i, c.VocabSize)
		}
		if b.Logits == nil || b.Logits[i] {
			need++
		}
	}
	if len(out) < need*c.VocabSize {
		return fmt.Errorf("forward: logits buffer holds %d floats, need %d", len(out), need*c.VocabSize)
	}
	for start := 0; start < n; start += e.maxBatch {
		end := min(start+e.maxBatch, n)
		p := Batch{Tokens: b.Tokens[start:end], Seqs: b.Seqs[start:end], Pos: b.Pos[start:end]}
		if b.Logits != nil {
			p.Logits = b.Logits[start:end]
		}
		rows, err := e.piece(ctx, p, out)
		if err != nil {
			return err
		}
		out = out[rows*c.VocabSize:]
	}
	return nil
}

// resolve looks up and checks the sequences and positions of a piece and
// groups its tokens into runs.
func (e *Engine) resolve(b Batch) error {
	if e.overwrite {
		return e.resolveOverwrite(b)
	}
	e.gen++
	e.runs = e.runs[:0]
	for t, id := range b.Seqs {
		s := e.seqs[id]
		if s == nil {
			return fmt.Errorf("forward: token %d: no sequence %d", t, id)
		}
		if s.gen != e.gen {
			s.gen, s.start = e.gen, s.cache.Len()
			s.next = s.start
		}
		p := b.Pos[t]
		if p != s.next {
			return fmt.Errorf("forward: token %d: sequence %d is at position %d, not %d", t, id, s.next, p)
		}
		if p >= e.ctx || p >= s.cache.Cap() {
			return fmt.Errorf("forward: %d positions exceed the context of %d", p+1, min(e.ctx, s.cache.Cap()))
		}
		s.next++
		e.tokSeq[t], e.tokPos[t] = s, p
		if r := len(e.runs) - 1; r >= 0 && e.runs[r].seq == s && e.runs[r].pos+e.runs[r].n == p && e.runs[r].t0+e.runs[r].n == t {
			e.runs[r].n++
			continue
		}
		e.runs = append(e.runs, run{seq: s, t0: t, n: 1, pos: p})
	}
	return nil
}

// rollback returns the sequences of the current piece to their lengths
// before it.
func (e *Engine) rollback(n int) {
	for _, s := range e.tokSeq[:n] {
		if s != nil && s.gen == e.gen {
			_ = s.cache.Truncate(s.start) // s.start ≤ every layer's length
		}
	}
	clear(e.tokSeq[:n])
}

// piece is the forward pass over n ≤ maxBatch tokens; it returns the
// number of logit rows written.
func (e *Engine) piece(ctx context.Context, b Batch, out []float32) (int, error) {
	c := &e.m.Config
	n, dim := len(b.Tokens), c.Dim
	if err := e.resolve(b); err != nil {
		e.rollback(n)
		return 0, err
	}
	x := e.x[:n*dim]
	if err := e.m.Embed(b.Tokens, x); err != nil {
		e.rollback(n)
		return 0, fmt.Errorf("forward: %w", err)
	}
	for li := range e.m.Weights.Layers {
		if err := ctx.Err(); err != nil {
			e.rollback(n)
			return 0, err
		}
		if err := e.block(li, x, n); err != nil {
			e.rollback(n)
			return 0, err
		}
	}

	// Final norm and classifier for the selected tokens, gathered.
	rows := 0
	xb := e.xb
	for t := 0; t < n; t++ {
		if b.Logits == nil || b.Logits[t] {
			rmsNorm(xb[rows*dim:(rows+1)*dim], x[t*dim:(t+1)*dim], e.m.Weights.OutNorm, dim, c.NormEps)
			rows++
		}
	}
	if rows > 0 {
		if err := e.matmuls(rows, xb[:rows*dim], mm{out, e.m.Weights.Output}); err != nil {
			e.rollback(n)
			return 0, err
		}
	}
	clear(e.tokSeq[:n])
	return rows, nil
}

// Embed writes the embedding rows of tokens into x (len(tokens) × Dim).
func (m *Model) Embed(tokens []int, x []float32) error {
	c, w := &m.Config, m.Weights
	if len(x) < len(tokens)*c.Dim {
		return fmt.Errorf("embed: %d floats for %d tokens of %d", len(x), len(tokens), c.Dim)
	}
	for t, id := range tokens {
		if id < 0 || id >= c.VocabSize {
			return fmt.Errorf("embed: token %d at index %d is outside the vocabulary of %d", id, t, c.VocabSize)
		}
		dst := x[t*c.Dim : (t+1)*c.Dim]
		if d := w.TokEmbd.Decoder; d != nil {
			if err := d.DecodeRow(id, dst); err != nil {
				return fmt.Errorf("token_embd: %w", err)
			}
			continue
		}
		if err := ggml.Dequantize(w.TokEmbd.DType, w.TokEmbd.Row(id), dst); err != nil {
			return fmt.Errorf("token_embd: %w", err)
		}
	}
	return nil
}

// block runs transformer block li over the n activations x of the current
// piece, in place, appending their keys and values to their sequences
// (or, in Recompute, writing them over held positions).
func (e *Engine) block(li int, x []float32, n int) error {
	c := &e.m.Config
	l := &e.m.Weights.Layers[li]
	dim := c.Dim
	qDim, kvDim, ffn := c.QDim(li), c.KVDim(li), c.Layer(li).FFNDim
	xb := e.xb[:n*dim]

	// Attention.
	rmsNorm(xb, x, l.AttnNorm, dim, c.NormEps)
	q, k, v := e.q[:n*qDim], e.k[:n*kvDim], e.v[:n*kvDim]
	if err := e.matmuls(n, xb, mm{q, l.Wq}, mm{k, l.Wk}, mm{v, l.Wv}); err != nil {
		return err
	}
	for t := 0; t < n; t++ {
		p := e.tokPos[t]
		e.rope.apply(q[t*qDim:(t+1)*qDim], p, c.HeadDim, c.RopeStyle)
		e.rope.apply(k[t*kvDim:(t+1)*kvDim], p, c.HeadDim, c.RopeStyle)
		if err := e.storeKV(li, t, p, k[t*kvDim:(t+1)*kvDim], v[t*kvDim:(t+1)*kvDim]); err != nil {
			return fmt.Errorf("forward: layer %d: sequence %d: %w", li, e.tokSeq[t].id, err)
		}
	}
	if err := e.attention(li); err != nil {
		return err
	}
	o := e.o[:n*dim]
	if err := e.matmuls(n, e.att[:n*qDim], mm{o, l.Wo}); err != nil {
		return err
	}
	add(x, o)

	// Feed-forward (SwiGLU).
	rmsNorm(xb, x, l.FFNNorm, dim, c.NormEps)
	g, u := e.gate[:n*ffn], e.up[:n*ffn]
	if err := e.matmuls(n, xb, mm{g, l.Gate}, mm{u, l.Up}); err != nil {
		return err
	}
	swiglu(g, u)
	if err := e.matmuls(n, g, mm{o, l.Down}); err != nil {
		return err
	}
	add(x, o)
	return nil
}

// attention computes softmax(q·kᵀ/√d)·v for every head of the piece's
// tokens, causally within each token's sequence, into e.att. Heads are
// spread across cores.
func (e *Engine) attention(layer int) error {
	e.attnLayer = layer
	heads := e.m.Config.Layer(layer).NHeads
	kernel.Parallel(heads, e.attnHeads)
	for h, err := range e.headErr[:heads] {
		if err != nil {
			clear(e.headErr)
			return fmt.Errorf("forward: layer %d: head %d: %w", layer, h, err)
		}
	}
	return nil
}

// attnQueries is how many queries of a head attention scores together (one
// pass over the keys for all of them, through the matrix micro-kernel).
const attnQueries = 4

// attnHeadsRange is attention for heads [lo, hi); it is bound once per
// Engine so that handing it to the pool allocates nothing. Each head uses
// its own score rows and cache scratch, so heads may run concurrently.
func (e *Engine) attnHeadsRange(lo, hi int) {
	c := &e.m.Config
	layer := e.attnLayer
	ls := c.Layer(layer)
	hd, qDim := c.HeadDim, c.QDim(layer)
	group := ls.NHeads / ls.NKVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	ds := e.ctx
	for h := lo; h < hi; h++ {
		kvh := h / group
		sc := e.scores[h*attnQueries*ds : (h+1)*attnQueries*ds]
		scratch := e.kvScratch[h]
		for _, r := range e.runs {
			cache := r.seq.cache
			masker, _ := cache.(AttentionMasker)
			for t0 := 0; t0 < r.n; t0 += attnQueries {
				nq := min(attnQueries, r.n-t0)
				tok, p0 := r.t0+t0, r.pos+t0
				// Scores up to the last query's span; earlier queries
				// ignore the positions past their own.
				if err := cache.Scores(layer, kvh, e.q[tok*qDim+h*hd:], qDim, nq, p0+nq, scale, sc, ds, scratch); err != nil {
					e.headErr[h] = err
					return
				}
				for i := 0; i < nq; i++ {
					row := sc[i*ds : i*ds+p0+i+1]
					if masker != nil {
						masker.Mask(layer, h, p0+i, row)
					}
					inv := 1 / kernel.Softmax(row)
					if masker != nil {
						masker.Observe(layer, h, p0+i, row, inv)
					}
					dst := e.att[(tok+i)*qDim+h*hd : (tok+i)*qDim+(h+1)*hd]
					if err := cache.WeightedSum(layer, kvh, row, dst, scratch); err != nil {
						e.headErr[h] = err
						return
					}
					for j := range dst {
						dst[j] *= inv
					}
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
func (e *Engine) matmuls(n int, x []float32, ops ...mm) error {
	multi := e.Observer == nil && len(ops) > 1 && len(ops) <= len(e.mmWs)
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
		e.mmOuts[i], e.mmWs[i] = ops[i].out, d.W
	}
	if multi {
		err := kernel.MatMulMulti(x, n, e.mmOuts[:len(ops)], e.mmWs[:len(ops)])
		clear(e.mmOuts[:])
		clear(e.mmWs[:])
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
	clear(e.mmOuts[:])
	clear(e.mmWs[:])
	for _, op := range ops {
		if e.Observer != nil {
			e.Observer.Observe(op.w.Name(), x[:n*op.w.Cols()], n)
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
