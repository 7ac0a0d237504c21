package prefix

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/terse-llm/terse/model"
)

// Prompt is a RAG prompt assembled from known chunks: Prefix (beginning
// with the model's BOS, as every chunk's stored KV does), then each chunk
// in order, then Question.
type Prompt struct {
	Prefix   []int
	Chunks   [][]int
	Question []int
}

// ChunkReuse prefills prompts of known chunks from each chunk's KV,
// computed once on its own after BOS and kept in Cache (memory, and its
// store when it has one) under the cache's chunk namespace, derived from
// its Namespace. It is safe for concurrent use with distinct states.
//
// The KV it assembles is approximate wherever it is not recomputed: do not
// Save such a sequence into a prefix cache of the same namespace.
type ChunkReuse struct {
	Model *model.Model
	// Cache keeps the chunks' KV; with RestorePrefix it also restores
	// and saves the prompts' prefixes as exact prefix blocks.
	Cache         *Cache
	RestorePrefix bool
	// Batch is the tokens per pass when a chunk's KV is computed (0: 512).
	Batch int
	// PerChunkShare selects Cache-Craft's per-chunk allocation of the
	// recompute budget instead of the global peak rule (see Prefill).
	PerChunkShare bool

	// pick, when set (tests: the random baseline), chooses k of the n
	// chunk tokens instead of Cache-Craft's selection.
	pick func(n, k int) []int
}

// PrefillStats says what a Prefill reused and recomputed.
type PrefillStats struct {
	PrefixRestored int   // prefix positions restored from the prefix cache
	ChunkTokens    int   // positions of the chunks
	ChunksComputed int   // chunks whose KV was not held and was computed
	Recomputed     []int // positions recomputed, increasing
}

// Prefill fills the empty sequence of st (its cache must implement
// model.KVWriter) with p, reusing the stored KV of p's chunks and
// recomputing round(recompute × chunk tokens) of their tokens, and writes
// the next-token logits of every question token into out
// (len(p.Question) × VocabSize; the last row is the first generated
// token's). recompute 0 reuses every chunk's KV as stored; 1 recomputes
// every chunk token, which equals a full prefill up to float32 rounding.
//
// Which tokens: Cache-Craft recomputes the chunk tokens whose attention
// goes to the text before their chunk (the inter-chunk attention that a
// chunk's cache made elsewhere lacks, which makes its KV wrong). The paper
// measures that attention where the chunk's cache was first made; these
// chunks are made on their own, so Prefill measures it in the new prompt,
// in the first layer, whose keys, values and queries depend on the token
// and position alone and so are exact in the reused cache
// (model.Engine.FirstLayerAttention: about one matrix of one layer per
// chunk token). Attention to position 0 (BOS, where both contexts put it)
// does not count. By default the tokens of the highest peak inter-chunk
// attention (the largest weight on one position outside the chunk) are
// chosen across all chunks; with PerChunkShare, the paper's allocation:
// each chunk gets a share of the budget in proportion to its tokens'
// total inter-chunk attention (its cache context impact), filled with its
// tokens of the most inter-chunk attention. On pdtext-llama-28m the peak
// rule gave the lower KLD (see the package's tests).
func (r *ChunkReuse) Prefill(ctx context.Context, st *model.State, p Prompt, recompute float64, out []float32) (PrefillStats, error) {
	return r.prefill(ctx, stateSeq{st, r.Model.Config.VocabSize}, p, recompute, out)
}

// PrefillSeq is Prefill for sequence id of an engine (the server's
// batched engine), which must be empty.
func (r *ChunkReuse) PrefillSeq(ctx context.Context, e *model.Engine, id int, p Prompt, recompute float64, out []float32) (PrefillStats, error) {
	if e.Seq(id) == nil {
		return PrefillStats{}, fmt.Errorf("chunk reuse: no sequence %d", id)
	}
	return r.prefill(ctx, engineSeq{e, id}, p, recompute, out)
}

// sequence is what Prefill needs of a sequence: a State's, or one of an
// Engine's.
type sequence interface {
	Pos() int
	Cache() model.KVCache
	run(ctx context.Context, tokens []int) error // at the next positions, no logits
	Recompute(ctx context.Context, tokens, pos []int, logits []bool, out []float32) error
	FirstLayerAttention(ctx context.Context, tokens, pos []int, f func(i int, w []float32)) error
}

type stateSeq struct {
	*model.State
	vocab int
}

func (s stateSeq) run(ctx context.Context, tokens []int) error {
	return s.ForwardContext(ctx, tokens, make([]float32, s.vocab), false)
}

type engineSeq struct {
	e  *model.Engine
	id int
}

func (s engineSeq) Pos() int             { return s.e.Seq(s.id).Len() }
func (s engineSeq) Cache() model.KVCache { return s.e.Seq(s.id).Cache() }
func (s engineSeq) batch(tokens, pos []int, logits []bool) model.Batch {
	ids := make([]int, len(tokens))
	for i := range ids {
		ids[i] = s.id
	}
	return model.Batch{Tokens: tokens, Seqs: ids, Pos: pos, Logits: logits}
}
func (s engineSeq) run(ctx context.Context, tokens []int) error {
	pos := make([]int, len(tokens))
	for i := range pos {
		pos[i] = s.Pos() + i
	}
	return s.e.Forward(ctx, s.batch(tokens, pos, make([]bool, len(tokens))), nil)
}
func (s engineSeq) Recompute(ctx context.Context, tokens, pos []int, logits []bool, out []float32) error {
	return s.e.Recompute(ctx, s.batch(tokens, pos, logits), out)
}
func (s engineSeq) FirstLayerAttention(ctx context.Context, tokens, pos []int, f func(i int, w []float32)) error {
	return s.e.FirstLayerAttention(ctx, s.id, tokens, pos, f)
}

func (r *ChunkReuse) prefill(ctx context.Context, st sequence, p Prompt, recompute float64, out []float32) (PrefillStats, error) {
	var stats PrefillStats
	cfg := &r.Model.Config
	V := cfg.VocabSize
	if st.Pos() != 0 {
		return stats, fmt.Errorf("chunk reuse: the sequence holds %d positions, want none", st.Pos())
	}
	if len(p.Prefix) == 0 || len(p.Question) == 0 {
		return stats, fmt.Errorf("chunk reuse: a prompt needs a prefix (%d tokens) and a question (%d tokens)", len(p.Prefix), len(p.Question))
	}
	if math.IsNaN(recompute) || recompute < 0 || recompute > 1 {
		return stats, fmt.Errorf("chunk reuse: recompute fraction %v outside [0, 1]", recompute)
	}
	if len(out) < len(p.Question)*V {
		return stats, fmt.Errorf("chunk reuse: logits buffer of %d floats for %d question tokens", len(out), len(p.Question))
	}
	total := len(p.Prefix) + len(p.Question)
	for _, ch := range p.Chunks {
		total += len(ch)
	}
	if total > st.Cache().Cap() {
		return stats, fmt.Errorf("chunk reuse: %d positions exceed the cache's %d", total, st.Cache().Cap())
	}
	kv := st.Cache()

	// The prefix, exact.
	if r.RestorePrefix {
		n, err := r.Cache.Restore(ctx, kv, p.Prefix)
		if err != nil {
			return stats, fmt.Errorf("chunk reuse: %w", err)
		}
		stats.PrefixRestored = n
	}
	if rest := p.Prefix[st.Pos():]; len(rest) > 0 {
		if err := st.run(ctx, rest); err != nil {
			return stats, fmt.Errorf("chunk reuse: prefix: %w", err)
		}
	}
	if r.RestorePrefix {
		if err := r.Cache.Save(ctx, kv, p.Prefix); err != nil {
			r.Cache.report(fmt.Errorf("chunk reuse: %w", err))
		}
	}

	// The chunks, moved into place.
	starts := make([]int, len(p.Chunks))
	for i, ch := range p.Chunks {
		starts[i] = st.Pos()
		if len(ch) == 0 {
			continue
		}
		computed, err := r.importChunk(ctx, kv, ch, starts[i])
		if err != nil {
			return stats, fmt.Errorf("chunk reuse: chunk %d: %w", i, err)
		}
		if computed {
			stats.ChunksComputed++
		}
		stats.ChunkTokens += len(ch)
	}

	sel, err := r.choose(ctx, st, p.Chunks, starts, stats.ChunkTokens, recompute)
	if err != nil {
		return stats, err
	}
	stats.Recomputed = sel

	// One pass: the chosen chunk tokens in place, the question appended.
	n := len(sel) + len(p.Question)
	toks, pos, flags := make([]int, 0, n), make([]int, 0, n), make([]bool, n)
	for _, q := range sel {
		c := chunkAt(starts, q)
		toks, pos = append(toks, p.Chunks[c][q-starts[c]]), append(pos, q)
	}
	at := st.Pos()
	for i, t := range p.Question {
		toks, pos = append(toks, t), append(pos, at+i)
		flags[len(sel)+i] = true
	}
	if err := st.Recompute(ctx, toks, pos, flags, out); err != nil {
		return stats, fmt.Errorf("chunk reuse: %w", err)
	}
	return stats, nil
}

// chunkAt is the index of the chunk holding position q.
func chunkAt(starts []int, q int) int {
	i, _ := slices.BinarySearch(starts, q+1)
	return i - 1
}

// importChunk appends the chunk's stored KV, moved to start, to kv,
// computing and storing it first when neither memory nor the store holds
// it.
func (r *ChunkReuse) importChunk(ctx context.Context, kv model.KVCache, tokens []int, start int) (computed bool, err error) {
	c := r.Cache
	cfg := &r.Model.Config
	lead := 0
	if cfg.BOS >= 0 {
		lead = 1
	}
	k := chain(c.chunkNS, tokens)
	sk := chunkStoreKey(k)
	n := c.acquire(k)
	if n == nil {
		n = c.fetch(ctx, k, sk, nil, lead, len(tokens))
	}
	if n == nil {
		b, err := r.computeChunk(ctx, tokens, lead)
		if err != nil {
			return false, err
		}
		n = c.insert(k, nil, b)
		computed = true
		if err := c.put(ctx, sk, b); err != nil {
			c.report(err)
		}
	}
	defer c.release([]*node{n})
	b := copyBlock(n.block)
	model.ShiftKeys(cfg, b, start)
	if err := model.ImportKV(kv, cfg, b); err != nil {
		return computed, err
	}
	return computed, nil
}

// computeChunk runs the chunk on its own, after BOS when the model has
// one, and returns the KV of its tokens.
func (r *ChunkReuse) computeChunk(ctx context.Context, tokens []int, lead int) (*model.KVBlock, error) {
	cfg := &r.Model.Config
	seq := tokens
	if lead > 0 {
		seq = append([]int{cfg.BOS}, tokens...)
	}
	batch := r.Batch
	if batch <= 0 {
		batch = 512
	}
	st := r.Model.NewState(len(seq), min(batch, len(seq)))
	if err := st.ForwardContext(ctx, seq, make([]float32, cfg.VocabSize), false); err != nil {
		return nil, err
	}
	return model.ExportKV(st.Cache(), cfg, lead, len(seq))
}

// copyBlock is a deep copy of b (cached blocks are immutable; ShiftKeys
// works in place).
func copyBlock(b *model.KVBlock) *model.KVBlock {
	c := &model.KVBlock{Start: b.Start, Len: b.Len, KVDim: slices.Clone(b.KVDim),
		K: make([][]float32, len(b.K)), V: make([][]float32, len(b.V))}
	for l := range b.K {
		c.K[l] = slices.Clone(b.K[l])
		c.V[l] = slices.Clone(b.V[l])
	}
	return c
}

// choose returns the positions of the chunk tokens to recompute,
// increasing: Cache-Craft's selection (see Prefill).
func (r *ChunkReuse) choose(ctx context.Context, st sequence, chunks [][]int, starts []int, total int, frac float64) ([]int, error) {
	k := min(int(math.Round(frac*float64(total))), total)
	if k == 0 {
		return nil, nil
	}
	var toks, pos []int
	for i, ch := range chunks {
		for j, t := range ch {
			toks, pos = append(toks, t), append(pos, starts[i]+j)
		}
	}
	if k == total {
		return pos, nil
	}
	if r.pick != nil {
		idx := r.pick(len(pos), k)
		slices.Sort(idx)
		sel := make([]int, len(idx))
		for i, j := range idx {
			sel[i] = pos[j]
		}
		return sel, nil
	}
	// Each chunk token's first-layer attention to the positions after BOS
	// and before its chunk: in all, and its largest on one position.
	inter := make([]float64, len(toks))
	peak := make([]float64, len(toks))
	owner := make([]int, len(toks))
	for i := range toks {
		owner[i] = chunkAt(starts, pos[i])
	}
	err := st.FirstLayerAttention(ctx, toks, pos, func(i int, w []float32) {
		var s, m float64
		for _, v := range w[min(1, len(w)):starts[owner[i]]] {
			s += float64(v)
			m = max(m, float64(v))
		}
		inter[i], peak[i] = s, m
	})
	if err != nil {
		return nil, fmt.Errorf("chunk reuse: %w", err)
	}
	var chosen []bool
	if r.PerChunkShare {
		chosen = allot(inter, inter, owner, chunks, k)
	} else {
		chosen = allot(nil, peak, owner, chunks, k)
	}
	var sel []int
	for i, ok := range chosen {
		if ok {
			sel = append(sel, pos[i])
		}
	}
	return sel, nil
}

// allot chooses k chunk tokens by rank. With inter, each chunk first gets
// a share of k in proportion to the inter-attention mass of its tokens
// (its cache context impact times its length), by largest remainder and
// capped at its size, filled with its tokens of the highest rank; what the
// shares leave (all of k without inter) goes to the highest-ranked of the
// rest. owner[i] is token i's chunk.
func allot(inter, rank []float64, owner []int, chunks [][]int, k int) []bool {
	// Each chunk's share of the budget: its inter-attention mass (cache
	// context impact × length), by largest remainder, capped at its size.
	mass := make([]float64, len(chunks))
	var sum float64
	for i, v := range inter {
		mass[owner[i]] += v
		sum += v
	}
	quota := make([]int, len(chunks))
	if sum > 0 {
		type rem struct {
			c int
			f float64
		}
		var rems []rem
		given := 0
		for c, m := range mass {
			x := float64(k) * m / sum
			quota[c] = min(int(x), len(chunks[c]))
			given += quota[c]
			rems = append(rems, rem{c, x - math.Floor(x)})
		}
		slices.SortStableFunc(rems, func(a, b rem) int {
			switch {
			case a.f > b.f:
				return -1
			case a.f < b.f:
				return 1
			}
			return 0
		})
		for _, x := range rems {
			if given < k && quota[x.c] < len(chunks[x.c]) {
				quota[x.c]++
				given++
			}
		}
	}
	// Within each chunk, its most outward-looking tokens; what caps left
	// over goes to the most outward-looking of the rest.
	order := make([]int, len(rank))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case rank[a] > rank[b]:
			return -1
		case rank[a] < rank[b]:
			return 1
		}
		return 0
	})
	chosen := make([]bool, len(rank))
	picked := 0
	for _, i := range order {
		if c := owner[i]; quota[c] > 0 {
			quota[c]--
			chosen[i] = true
			picked++
		}
	}
	for _, i := range order {
		if picked >= k {
			break
		}
		if !chosen[i] {
			chosen[i] = true
			picked++
		}
	}
	return chosen
}
