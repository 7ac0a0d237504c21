package prefix

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/store"
)

// ragPrompt draws a prompt of a prefix, chunks and a question.
func ragPrompt(rng *rand.Rand, prefix int, chunks []int, question int) Prompt {
	V := testCfg.VocabSize
	p := Prompt{Prefix: randomTokens(rng, prefix, V, testCfg.BOS), Question: randomTokens(rng, question, V, 3)}
	for _, n := range chunks {
		p.Chunks = append(p.Chunks, randomTokens(rng, n, V, 3+rng.IntN(V-3)))
	}
	return p
}

func (p Prompt) tokens() []int {
	out := slices.Clone(p.Prefix)
	for _, c := range p.Chunks {
		out = append(out, c...)
	}
	return append(out, p.Question...)
}

// questionKLD prefills p through r at frac and returns the mean KLD of the
// question's next-token distributions from a full prefill's, and the stats.
func questionKLD(t *testing.T, m *model.Model, r *ChunkReuse, p Prompt, frac float64) (float64, PrefillStats) {
	t.Helper()
	V := m.Config.VocabSize
	all := p.tokens()
	cold := coldLogits(t, m, all, 16)
	st := m.NewStateWithCache(m.NewCache(len(all)), 16)
	out := make([]float32, len(p.Question)*V)
	stats, err := r.Prefill(context.Background(), st, p, frac, out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pos() != len(all) {
		t.Fatalf("%d positions after prefill, want %d", st.Pos(), len(all))
	}
	q0 := len(all) - len(p.Question)
	var sum float64
	for i := range p.Question {
		sum += kld(cold[(q0+i)*V:(q0+i+1)*V], out[i*V:(i+1)*V])
	}
	return sum / float64(len(p.Question)), stats
}

// TestChunkReuseFullRecomputeIsPrefill: recomputing every chunk token gives
// a full prefill's distributions (KLD at rounding level); reusing the first
// chunk right after BOS is exact, since it was computed in the same place.
func TestChunkReuseFullRecomputeIsPrefill(t *testing.T) {
	m := randomModel(t, testCfg, 7)
	rng := rand.New(rand.NewPCG(11, 12))
	pc, _ := New(&m.Config, Options{Namespace: "test"})
	r := &ChunkReuse{Model: m, Cache: pc}
	p := ragPrompt(rng, 5, []int{20, 13, 17}, 6)
	d, stats := questionKLD(t, m, r, p, 1)
	if d > 1e-9 {
		t.Fatalf("KLD %g with every chunk token recomputed", d)
	}
	if len(stats.Recomputed) != 50 || stats.ChunkTokens != 50 || stats.ChunksComputed != 3 {
		t.Fatalf("stats %+v, want 50 of 50 chunk tokens recomputed, 3 chunks computed", stats)
	}
	lone := Prompt{Prefix: []int{testCfg.BOS}, Chunks: [][]int{p.Chunks[0]}, Question: p.Question}
	if d, stats := questionKLD(t, m, r, lone, 0); d > 1e-9 || stats.ChunksComputed != 0 || len(stats.Recomputed) != 0 {
		t.Fatalf("a chunk right after BOS, reused: KLD %g, stats %+v", d, stats)
	}
}

// TestChunkReuseSelection: the recompute budget is round(frac × chunk
// tokens), positions inside the chunks, increasing; more recomputation
// brings the question's distributions closer to a full prefill's; chunks
// are shared through the store by another cache.
func TestChunkReuseSelection(t *testing.T) {
	m := randomModel(t, testCfg, 8)
	rng := rand.New(rand.NewPCG(13, 14))
	st := store.NewMem()
	pc, _ := New(&m.Config, Options{Namespace: "test", Store: st})
	r := &ChunkReuse{Model: m, Cache: pc}
	p := ragPrompt(rng, 9, []int{30, 25, 0, 35}, 8)
	var klds []float64
	for _, frac := range []float64{0, 0.1, 0.3, 0.6, 1} {
		d, stats := questionKLD(t, m, r, p, frac)
		klds = append(klds, d)
		want := int(math.Round(frac * 90))
		if len(stats.Recomputed) != want || !slices.IsSorted(stats.Recomputed) {
			t.Fatalf("frac %v: recomputed %v, want %d increasing positions", frac, stats.Recomputed, want)
		}
		for _, q := range stats.Recomputed {
			if q < 9 || q >= 99 {
				t.Fatalf("frac %v: recomputed position %d outside the chunks [9, 99)", frac, q)
			}
		}
		t.Logf("recompute %.1f: KLD %.3g", frac, d)
	}
	if !(klds[0] > klds[2] && klds[2] > klds[4]) || klds[4] > 1e-9 {
		t.Fatalf("KLD by recompute fraction %v: not falling to 0", klds)
	}
	share := &ChunkReuse{Model: m, Cache: pc, PerChunkShare: true}
	for _, frac := range []float64{0.1, 0.5} {
		_, stats := questionKLD(t, m, share, p, frac)
		if want := int(math.Round(frac * 90)); len(stats.Recomputed) != want || !slices.IsSorted(stats.Recomputed) {
			t.Fatalf("per-chunk share %v: recomputed %v, want %d increasing positions", frac, stats.Recomputed, want)
		}
	}
	other, _ := New(&m.Config, Options{Namespace: "test", Store: st})
	r2 := &ChunkReuse{Model: m, Cache: other, RestorePrefix: true}
	if _, stats := questionKLD(t, m, r2, p, 0.2); stats.ChunksComputed != 0 {
		t.Fatalf("a second cache over the store computed %d chunks", stats.ChunksComputed)
	}
	if _, stats := questionKLD(t, m, r2, p, 0.2); stats.PrefixRestored != 0 {
		t.Fatalf("restored %d prefix positions of a 9-token prefix with blocks of 32", stats.PrefixRestored)
	}
}

func TestChunkReuseErrors(t *testing.T) {
	m := randomModel(t, testCfg, 9)
	pc, _ := New(&m.Config, Options{Namespace: "test"})
	r := &ChunkReuse{Model: m, Cache: pc}
	V := testCfg.VocabSize
	ok := Prompt{Prefix: []int{1, 4}, Chunks: [][]int{{5, 6, 7}}, Question: []int{8, 9}}
	tests := []struct {
		name  string
		p     Prompt
		frac  float64
		cache model.KVCache
		out   int
		want  string
	}{
		{"no question", Prompt{Prefix: []int{1}}, 0, m.NewCache(16), V, "question (0 tokens)"},
		{"no prefix", Prompt{Question: []int{3}}, 0, m.NewCache(16), V, "prefix (0 tokens)"},
		{"fraction", ok, 1.5, m.NewCache(16), 2 * V, "outside [0, 1]"},
		{"NaN fraction", ok, math.NaN(), m.NewCache(16), 2 * V, "outside [0, 1]"},
		{"small buffer", ok, 0, m.NewCache(16), V, "logits buffer"},
		{"small cache", ok, 0, m.NewCache(5), 2 * V, "exceed the cache"},
		{"token outside the vocabulary", Prompt{Prefix: []int{1}, Chunks: [][]int{{5, 99}}, Question: []int{3}}, 0, m.NewCache(16), V, "chunk 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := m.NewStateWithCache(tc.cache, 8)
			_, err := r.Prefill(context.Background(), st, tc.p, tc.frac, make([]float32, tc.out))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	st := m.NewStateWithCache(m.NewCache(16), 8)
	_ = st.Forward([]int{1, 2}, make([]float32, V), false)
	if _, err := r.Prefill(context.Background(), st, ok, 0, make([]float32, 2*V)); err == nil || !strings.Contains(err.Error(), "holds 2") {
		t.Fatalf("prefill into a used sequence: %v", err)
	}
}

// randomPick is the random baseline of the token selection.
func randomPick(seed uint64) func(n, k int) []int {
	rng := rand.New(rand.NewPCG(seed, 99))
	return func(n, k int) []int { return rng.Perm(n)[:k] }
}

// TestChunkReusePrefillSeq: the engine path gives what the state path
// gives, on a sequence of an engine that serves another one too.
func TestChunkReusePrefillSeq(t *testing.T) {
	m := randomModel(t, testCfg, 10)
	rng := rand.New(rand.NewPCG(15, 16))
	pc, _ := New(&m.Config, Options{Namespace: "test"})
	r := &ChunkReuse{Model: m, Cache: pc}
	p := ragPrompt(rng, 6, []int{12, 20}, 5)
	V := testCfg.VocabSize
	n := len(p.tokens())
	want := make([]float32, len(p.Question)*V)
	if _, err := r.Prefill(context.Background(), m.NewStateWithCache(m.NewCache(n), 16), p, 0.3, want); err != nil {
		t.Fatal(err)
	}
	e := m.NewEngine(64, 16)
	if _, err := e.AddSeq(0, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Forward(context.Background(), model.Batch{Tokens: []int{1, 7, 8}, Seqs: []int{0, 0, 0}, Pos: []int{0, 1, 2}}, make([]float32, 3*V)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddSeq(1, m.NewCache(64)); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, len(p.Question)*V)
	stats, err := r.PrefillSeq(context.Background(), e, 1, p, 0.3, got)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Recomputed) != 10 || e.Seq(1).Len() != n || e.Seq(0).Len() != 3 {
		t.Fatalf("stats %+v; sequences of %d and %d positions", stats, e.Seq(0).Len(), e.Seq(1).Len())
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5 {
			t.Fatalf("logit %d: engine path %v, state path %v", i, got[i], want[i])
		}
	}
	if _, err := r.PrefillSeq(context.Background(), e, 7, p, 0, got); err == nil {
		t.Fatal("prefill of a missing sequence succeeded")
	}
}
