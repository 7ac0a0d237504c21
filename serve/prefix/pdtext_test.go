package prefix

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
)

// pdtext is pdtext-llama-28m (Q8_0) with the documents of the held-out
// text, each tokenized without BOS.
type pdtext struct {
	m    *model.Model
	docs [][]int
}

func loadPdtext(tb testing.TB) *pdtext {
	tb.Helper()
	ck, err := load.Open(testshared.Path(tb, "models/pdtext-llama-28m-gguf/pdtext-llama-28m-Q8_0.gguf"), load.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ck.Close() })
	raw, err := os.ReadFile(testshared.Path(tb, "data/pdtext-val.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	p := &pdtext{m: ck.Model}
	for _, doc := range strings.Split(string(raw), "<|doc|>") {
		if doc = strings.TrimSpace(doc); doc != "" {
			p.docs = append(p.docs, ck.Tokenizer.Encode(doc, false))
		}
	}
	return p
}

// longDocs returns the documents of at least n tokens.
func (p *pdtext) longDocs(n int) [][]int {
	var out [][]int
	for _, d := range p.docs {
		if len(d) >= n {
			out = append(out, d)
		}
	}
	return out
}

// ragPrompt is the bars' RAG prompt: BOS and 24 tokens of one document as
// the prefix, the first 200 tokens of four others as the chunks, and 32
// tokens of a sixth as the question.
func (p *pdtext) ragPrompt(tb testing.TB, variant int) Prompt {
	docs := p.longDocs(260)
	if len(docs) < 6+variant {
		tb.Fatalf("only %d documents of 260 tokens", len(docs))
	}
	bos := p.m.Config.BOS
	pr := Prompt{Prefix: append([]int{bos}, docs[variant][:24]...), Question: docs[variant+5][100:132]}
	for i := 1; i <= 4; i++ {
		pr.Chunks = append(pr.Chunks, docs[variant+i][:200])
	}
	return pr
}

// prefixPrompt is an 800-token shared prefix and a 32-token request.
func (p *pdtext) prefixPrompt(tb testing.TB, variant int) (prefix, request []int) {
	docs := p.longDocs(900)
	if len(docs) < 2 {
		tb.Fatalf("only %d documents of 900 tokens", len(docs))
	}
	prefix = append([]int{p.m.Config.BOS}, docs[0][:799]...)
	return prefix, docs[1][32*variant : 32*variant+32]
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// TestPdtextPrefixRestore: a request whose 800-token prefix is restored
// gives a cold prefill's next-token logits (within 1e-5: the same floats
// in the cache, other matrix pieces).
func TestPdtextPrefixRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("pdtext-llama-28m prefills; skipped with -short")
	}
	p := loadPdtext(t)
	m := p.m
	prefix, req := p.prefixPrompt(t, 0)
	pc, _ := New(&m.Config, Options{Namespace: "pdtext-llama-28m Q8_0 f32"})
	all := append(slices.Clone(prefix), req...)
	cold := m.NewStateWithCache(m.NewCache(len(all)), 512)
	want := make([]float32, m.Config.VocabSize)
	if err := cold.Forward(all, want, false); err != nil {
		t.Fatal(err)
	}
	if err := pc.Save(context.Background(), cold.Cache(), all); err != nil {
		t.Fatal(err)
	}
	other, req2 := p.prefixPrompt(t, 1)
	all2 := append(slices.Clone(other), req2...)
	ref := make([]float32, m.Config.VocabSize)
	if err := m.NewStateWithCache(m.NewCache(len(all2)), 512).Forward(all2, ref, false); err != nil {
		t.Fatal(err)
	}
	kv := m.NewCache(len(all2))
	n, err := pc.Restore(context.Background(), kv, all2)
	if err != nil {
		t.Fatal(err)
	}
	if n != 800 {
		t.Fatalf("restored %d positions of the shared 800-token prefix", n)
	}
	got := make([]float32, m.Config.VocabSize)
	if err := m.NewStateWithCache(kv, 512).Forward(all2[n:], got, false); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range got {
		worst = max(worst, float64(abs32(got[i]-ref[i])))
	}
	t.Logf("restored %d of %d positions; largest logit difference from a cold prefill %.2g", n, len(all2), worst)
	if worst > 1e-4 {
		t.Fatalf("largest logit difference %g", worst)
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// chunkKLDs runs the RAG prompt by full prefill and by chunk reuse at each
// fraction, then gen greedy tokens (the full prefill's) through both, and
// returns the mean KLD over the question's and generated tokens' next-token
// distributions, per fraction.
func chunkKLDs(tb testing.TB, p *pdtext, r *ChunkReuse, pr Prompt, fracs []float64, gen int) []float64 {
	m := p.m
	V := m.Config.VocabSize
	all := pr.tokens()
	ctx := len(all) + gen
	full := m.NewStateWithCache(m.NewCache(ctx), 512)
	fullOut := make([]float32, len(all)*V)
	if err := full.Forward(all, fullOut, true); err != nil {
		tb.Fatal(err)
	}
	q0 := len(all) - len(pr.Question)
	ref := slices.Clone(fullOut[q0*V:])
	var toks []int
	last := ref[len(ref)-V:]
	step := make([]float32, V)
	for g := 0; g < gen; g++ {
		tok := argmax(last)
		toks = append(toks, tok)
		if err := full.Forward([]int{tok}, step, false); err != nil {
			tb.Fatal(err)
		}
		ref = append(ref, step...)
		last = step
	}
	var out []float64
	for _, f := range fracs {
		st := m.NewStateWithCache(m.NewCache(ctx), 512)
		got := make([]float32, len(pr.Question)*V)
		if _, err := r.Prefill(context.Background(), st, pr, f, got); err != nil {
			tb.Fatal(err)
		}
		for _, tok := range toks {
			if err := st.Forward([]int{tok}, step, false); err != nil {
				tb.Fatal(err)
			}
			got = append(got, step...)
		}
		var sum float64
		rows := len(got) / V
		for i := 0; i < rows; i++ {
			sum += kld(ref[i*V:(i+1)*V], got[i*V:(i+1)*V])
		}
		out = append(out, sum/float64(rows))
	}
	return out
}

// TestPdtextChunkReuseKLD is the chunk-reuse quality bar: four 200-token
// chunks and a 32-token question, KLD of the question's and 8 generated
// tokens' next-token distributions against a full prefill, by recompute
// fraction; the peak rule against the paper's per-chunk share and a random
// choice of the same size.
func TestPdtextChunkReuseKLD(t *testing.T) {
	if testing.Short() {
		t.Skip("pdtext-llama-28m prefills; skipped with -short")
	}
	p := loadPdtext(t)
	fracs := []float64{0, 0.1, 0.2, 1}
	for variant := 0; variant < 2; variant++ {
		pc, _ := New(&p.m.Config, Options{Namespace: "pdtext-llama-28m Q8_0 f32"})
		r := &ChunkReuse{Model: p.m, Cache: pc}
		pr := p.ragPrompt(t, variant)
		k := chunkKLDs(t, p, r, pr, fracs, 8)
		rnd := &ChunkReuse{Model: p.m, Cache: pc, pick: randomPick(uint64(variant))}
		kr := chunkKLDs(t, p, rnd, pr, []float64{0.2}, 8)
		share := &ChunkReuse{Model: p.m, Cache: pc, PerChunkShare: true}
		ks := chunkKLDs(t, p, share, pr, []float64{0.1, 0.2}, 8)
		t.Logf("prompt %d (%d tokens): KLD by recompute fraction: 0: %.4f  0.1: %.4f  0.2: %.4f  1.0: %.2g; per-chunk share 0.1: %.4f 0.2: %.4f; random 0.2: %.4f",
			variant, len(pr.tokens()), k[0], k[1], k[2], k[3], ks[0], ks[1], kr[0])
		if !(k[2] < kr[0]) {
			t.Errorf("prompt %d: KLD %g at 0.2 not below a random choice's %g", variant, k[2], kr[0])
		}
		if k[3] > 1e-6 {
			t.Errorf("prompt %d: KLD %g with every chunk token recomputed", variant, k[3])
		}
		if !(k[2] < k[0]) {
			t.Errorf("prompt %d: KLD %g at 0.2 not below %g at 0", variant, k[2], k[0])
		}
	}
}

// BenchmarkPdtextTTFT measures the two latency bars, each iteration one
// round alternating the variants: a request sharing an 800-token prefix
// (restore + the 32 other tokens + first logits) against the same request
// cold, and chunk reuse at recompute 0, 0.1 and 0.2 (chunks held in
// memory) against a full prefill of the same 857-token prompt. It reports
// the median ratios (run with -benchtime=5x or more).
func BenchmarkPdtextTTFT(b *testing.B) {
	p := loadPdtext(b)
	m := p.m
	V := m.Config.VocabSize
	ctx := context.Background()
	prefix, req := p.prefixPrompt(b, 0)
	all := append(slices.Clone(prefix), req...)
	pc, _ := New(&m.Config, Options{Namespace: "pdtext-llama-28m Q8_0 f32"})
	{
		st := m.NewStateWithCache(m.NewCache(len(all)), 512)
		if err := st.Forward(prefix, make([]float32, V), false); err != nil {
			b.Fatal(err)
		}
		if err := pc.Save(ctx, st.Cache(), prefix); err != nil {
			b.Fatal(err)
		}
	}
	pr := p.ragPrompt(b, 0)
	rag := pr.tokens()
	r := &ChunkReuse{Model: m, Cache: pc}
	if _, err := r.Prefill(ctx, m.NewStateWithCache(m.NewCache(len(rag)), 512), pr, 0, make([]float32, len(pr.Question)*V)); err != nil {
		b.Fatal(err)
	}
	last := make([]float32, V)
	qout := make([]float32, len(pr.Question)*V)
	timed := func(f func() error) time.Duration {
		t0 := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	names := []string{"prefix-cold", "prefix-warm", "rag-full", "rag-0", "rag-0.1", "rag-0.2"}
	times := make([][]float64, len(names))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := []time.Duration{
			timed(func() error { return m.NewStateWithCache(m.NewCache(len(all)), 512).Forward(all, last, false) }),
			timed(func() error {
				kv := m.NewCache(len(all))
				n, err := pc.Restore(ctx, kv, all)
				if err != nil {
					return err
				}
				return m.NewStateWithCache(kv, 512).Forward(all[n:], last, false)
			}),
			timed(func() error { return m.NewStateWithCache(m.NewCache(len(rag)), 512).Forward(rag, last, false) }),
		}
		for _, f := range []float64{0, 0.1, 0.2} {
			d = append(d, timed(func() error {
				_, err := r.Prefill(ctx, m.NewStateWithCache(m.NewCache(len(rag)), 512), pr, f, qout)
				return err
			}))
		}
		for j := range d {
			times[j] = append(times[j], d[j].Seconds())
		}
	}
	b.StopTimer()
	med := func(x []float64) float64 {
		s := slices.Clone(x)
		slices.Sort(s)
		return s[len(s)/2]
	}
	for j, n := range names {
		b.ReportMetric(med(times[j])*1e3, n+"_ms")
	}
	ratios := func(num, den int) []float64 {
		var out []float64
		for i := range times[num] {
			out = append(out, times[num][i]/times[den][i])
		}
		return out
	}
	b.ReportMetric(med(ratios(1, 0)), "prefix-warm/cold")
	for j := 3; j < 6; j++ {
		b.ReportMetric(med(ratios(j, 2)), names[j]+"/full")
	}
	b.Logf("rounds %d: per-round ratios prefix warm/cold %.3f; rag 0.2/full %.3f", b.N, ratios(1, 0), ratios(5, 2))
}
