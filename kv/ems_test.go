package kv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
)

// emsRefEntry is one entry of the plain reference of EMS's evict-then-merge:
// the positions it stands for and their weights.
type emsRefEntry struct {
	slot    int
	members map[int]float64
	acc     float64
}

// emsRef runs EMS's evict-then-merge on one query head of n positions,
// written from its definition in float64 with maps (no state shared with
// the cache): it returns each query's output and the entries kept at the
// end, plus how many evictions merged and how many dropped.
type emsRef struct {
	e             Evict
	budget        int
	recent        int
	keys, vals    [][]float32 // as stored (what attention sees)
	simKeys       [][]float32 // as appended (what similarity sees)
	kvh, hd       int
	entries       []*emsRefEntry
	weights       []map[int]float64 // per query, entry slot → weight
	merged, dropd int
}

func (r *emsRef) key(p int) []float64 {
	k := make([]float64, r.hd)
	for i := range k {
		k[i] = float64(r.simKeys[p][r.kvh*r.hd+i])
	}
	return k
}

// mean is an entry's weighted mean key.
func (r *emsRef) mean(en *emsRefEntry) []float64 {
	k := make([]float64, r.hd)
	for p, a := range en.members {
		for i, x := range r.key(p) {
			k[i] += a * x
		}
	}
	return k
}

func (r *emsRef) score(en *emsRefEntry, pos int) float64 {
	var local float64
	for i := max(0, pos-r.e.ObsWindow); i < pos; i++ {
		local += r.weights[i][en.slot]
	}
	return en.acc/float64(max(1, pos-en.slot)) + local/float64(max(1, min(pos, r.e.ObsWindow)))
}

func refCos(a, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab, aa, bb = ab+a[i]*b[i], aa+a[i]*a[i], bb+b[i]*b[i]
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// step adds position pos, evicts past the budget and returns the output of
// query q.
func (r *emsRef) step(pos int, q []float32, scale float64) []float64 {
	r.entries = append(r.entries, &emsRefEntry{slot: pos, members: map[int]float64{pos: 1}})
	if len(r.entries) > r.budget {
		vi := -1
		best := 0.0
		for i, en := range r.entries {
			if x := r.score(en, pos); en.slot <= pos-r.recent && (vi < 0 || x < best) {
				vi, best = i, x
			}
		}
		if vi >= 0 {
			v := r.entries[vi]
			r.entries = slices.Delete(r.entries, vi, vi+1)
			kv := r.mean(v)
			ti, sim := -1, 0.0
			for i, en := range r.entries {
				if s := refCos(kv, r.mean(en)); ti < 0 || s > sim {
					ti, sim = i, s
				}
			}
			if ti >= 0 && sim >= r.e.Threshold && !r.e.EvictOnly {
				t := r.entries[ti]
				wt, wv := float64(len(t.members)), float64(len(v.members))
				if r.e.ScoreWeights {
					wt, wv = r.score(t, pos), r.score(v, pos)
					if !(wt+wv > 0) {
						wt, wv = 1, 1
					}
				}
				for p := range t.members {
					t.members[p] *= wt / (wt + wv)
				}
				for p, a := range v.members {
					t.members[p] = a * wv / (wt + wv)
				}
				t.acc += v.acc
				for _, w := range r.weights {
					w[t.slot] += w[v.slot]
					delete(w, v.slot)
				}
				r.merged++
			} else {
				r.dropd++
			}
		}
	}
	s := make([]float64, len(r.entries))
	mx := math.Inf(-1)
	for i, en := range r.entries {
		for p, a := range en.members {
			var d float64
			for j := 0; j < r.hd; j++ {
				d += float64(q[j]) * float64(r.keys[p][r.kvh*r.hd+j])
			}
			s[i] += a * d * scale
		}
		s[i] += math.Log(float64(len(en.members)))
		mx = math.Max(mx, s[i])
	}
	var z float64
	for i := range s {
		s[i] = math.Exp(s[i] - mx)
		z += s[i]
	}
	out := make([]float64, r.hd)
	w := map[int]float64{}
	for i, en := range r.entries {
		w[en.slot] = s[i] / z
		en.acc += s[i] / z
		for p, a := range en.members {
			for j := range out {
				out[j] += s[i] / z * a * float64(r.vals[p][r.kvh*r.hd+j])
			}
		}
	}
	r.weights = append(r.weights, w)
	return out
}

// emsRun drives an ems cache as the engine does, one query per position,
// and compares every output with the reference's.
func emsRun(t *testing.T, spec string, keys, vals [][]float32, tol float64) (ref *emsRef) {
	t.Helper()
	cfg := testCfg
	n := len(keys)
	sp, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sp.New(&cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	ec := c.(*evictCache)
	rng := rand.New(rand.NewPCG(3, 4))
	hd, layer := cfg.HeadDim, 1
	for l := 0; l < cfg.NLayers; l++ {
		for p := 0; p < n; p++ {
			if err := c.Append(l, keys[p], vals[p]); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The reference attends over the rows as CACHE stores them.
	sk, sv := keys, vals
	if rd, ok := ec.KVCache.(model.KVReader); ok {
		d := cfg.KVDim(layer)
		k, v := make([]float32, n*d), make([]float32, n*d)
		if err := rd.ReadKV(layer, 0, n, k, v); err != nil {
			t.Fatal(err)
		}
		sk, sv = nil, nil
		for p := 0; p < n; p++ {
			sk, sv = append(sk, k[p*d:(p+1)*d]), append(sv, v[p*d:(p+1)*d])
		}
	}
	scale := float32(1 / math.Sqrt(float64(hd)))
	scratch := make([]float32, c.ScratchSize())
	var refs []*emsRef
	for qh := 0; qh < cfg.NHeads; qh++ {
		kvh := qh / (cfg.NHeads / cfg.NKVHeads)
		ref := &emsRef{e: *sp.Evict, budget: ec.budget, recent: ec.recent, keys: sk, vals: sv, simKeys: keys, kvh: kvh, hd: hd}
		for pos := 0; pos < n; pos++ {
			q := make([]float32, hd)
			for i := range q {
				q[i] = float32(rng.NormFloat64())
			}
			row := make([]float32, pos+1)
			if err := c.Scores(layer, kvh, q, hd, 1, pos+1, scale, row, pos+1, scratch); err != nil {
				t.Fatal(err)
			}
			ec.Mask(layer, qh, pos, row)
			inv := 1 / kernel.Softmax(row)
			ec.Observe(layer, qh, pos, row, inv)
			got := make([]float32, hd)
			if err := c.WeightedSum(layer, kvh, row, got, scratch); err != nil {
				t.Fatal(err)
			}
			want := ref.step(pos, q, float64(scale))
			for j := range want {
				if g := float64(got[j] * inv); math.Abs(g-want[j]) > tol {
					t.Fatalf("%s: head %d, position %d, channel %d: %v, want %v (%d entries)", spec, qh, pos, j, g, want[j], len(ref.entries))
				}
			}
			in := map[int]bool{}
			for _, en := range ref.entries {
				for p := range en.members {
					in[p] = true
				}
			}
			for p, w := range row {
				if w != 0 && !in[p] {
					t.Fatalf("%s: head %d, position %d: evicted position %d has weight %g", spec, qh, pos, p, w)
				}
			}
		}
		if len(ref.entries) != min(n, ec.budget) {
			t.Errorf("%s: head %d: %d entries at the end, budget %d", spec, qh, len(ref.entries), ec.budget)
		}
		refs = append(refs, ref)
	}
	return refs[0]
}

// TestEMSMergeAttention compares EMS's evict-then-merge cache with the
// float64 reference on random keys and values: merged entries' scores,
// their count in the softmax, and their mean values.
func TestEMSMergeAttention(t *testing.T) {
	const n = 96
	rng := rand.New(rand.NewPCG(1, 2))
	keys, vals := kvRows(rng, n, testCfg.KVDim(1))
	for _, tc := range []struct {
		spec       string
		both       bool // merges and drops both happen
		onlyDrops  bool
		onlyMerges bool
	}{
		{"ems:24:w8:t0.8", true, false, false},
		{"ems:0.3:w1:t0.82", true, false, false},
		{"ems:20:w4:t0.8:s", true, false, false},
		{"ems:16:w8:t-1", false, false, true},
		{"ems:30:w40:t0.8+f16", true, false, false},
		{"ems:24:w8:t0.7:e", false, true, false},
		{"ems:1.0:t-1", false, false, false},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			ref := emsRun(t, tc.spec, keys, vals, 1e-4)
			t.Logf("%s: %d merged, %d dropped", tc.spec, ref.merged, ref.dropd)
			switch {
			case tc.both && (ref.merged == 0 || ref.dropd == 0):
				t.Errorf("%d merged, %d dropped: want both", ref.merged, ref.dropd)
			case tc.onlyDrops && ref.merged != 0:
				t.Errorf("%d merged, want none", ref.merged)
			case tc.onlyMerges && ref.dropd != 0:
				t.Errorf("%d dropped, want none", ref.dropd)
			}
		})
	}
}

// TestEMSEdgeCases: a single position; all-equal keys, where the merged
// entries, weighted by their counts, give exactly full attention (the mean
// value) and eviction alone does not; a budget of every position, where
// the cache is f32's (TestEvictFullBudgetIdentical checks that through the
// engine).
func TestEMSEdgeCases(t *testing.T) {
	d := testCfg.KVDim(1)
	rng := rand.New(rand.NewPCG(5, 6))
	k1, v1 := kvRows(rng, 1, d)
	emsRun(t, "ems:0.5", k1, v1, 1e-6)

	const n = 64
	keys, vals := kvRows(rng, n, d)
	for p := range keys {
		keys[p] = keys[0]
	}
	for _, tc := range []struct {
		spec  string
		exact bool
	}{{"ems:0.25:w8", true}, {"ems:0.25:w8:e", false}, {"ems:8:w4:t1", true}} {
		ref := emsRun(t, tc.spec, keys, vals, 1e-4)
		// The reference's last query: its output against the mean value.
		en := ref.entries
		mean := make([]float64, ref.hd)
		for p := range vals {
			for j := range mean {
				mean[j] += float64(vals[p][ref.kvh*ref.hd+j]) / n
			}
		}
		out := make([]float64, ref.hd)
		total := 0
		for _, e := range en {
			total += len(e.members)
			for p, a := range e.members {
				for j := range out {
					out[j] += float64(len(e.members)) * a * float64(vals[p][ref.kvh*ref.hd+j])
				}
			}
		}
		var dev float64
		for j := range out {
			dev = math.Max(dev, math.Abs(out[j]/float64(total)-mean[j]))
		}
		if tc.exact && (total != n || dev > 1e-9) {
			t.Errorf("%s: all-equal keys: %d positions in %d entries, mean value off by %g; want all %d, exact", tc.spec, total, len(en), dev, n)
		}
		if !tc.exact && dev < 1e-3 {
			t.Errorf("%s: all-equal keys: the mean value although positions are dropped (off by %g)", tc.spec, dev)
		}
	}
}

// TestEMSTruncate: truncating to n keeps every entry consistent (weights
// summing to 1, counts, mean keys of the remaining positions) and the cache
// goes on.
func TestEMSTruncate(t *testing.T) {
	cfg := testCfg
	const n = 80
	sp, err := Parse("ems:24:w8:t0.8")
	if err != nil {
		t.Fatal(err)
	}
	c, err := sp.New(&cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	ec := c.(*evictCache)
	rng := rand.New(rand.NewPCG(7, 8))
	keys, vals := kvRows(rng, n, cfg.KVDim(0))
	hd := cfg.HeadDim
	scale := float32(1 / math.Sqrt(float64(hd)))
	scratch := make([]float32, c.ScratchSize())
	run := func(from, to int) {
		for p := from; p < to; p++ {
			for l := 0; l < cfg.NLayers; l++ {
				if err := c.Append(l, keys[p], vals[p]); err != nil {
					t.Fatal(err)
				}
			}
			for l := 0; l < cfg.NLayers; l++ {
				for qh := 0; qh < cfg.NHeads; qh++ {
					kvh := qh / (cfg.NHeads / cfg.NKVHeads)
					q := make([]float32, hd)
					for i := range q {
						q[i] = float32(rng.NormFloat64())
					}
					row := make([]float32, p+1)
					if err := c.Scores(l, kvh, q, hd, 1, p+1, scale, row, p+1, scratch); err != nil {
						t.Fatal(err)
					}
					ec.Mask(l, qh, p, row)
					inv := 1 / kernel.Softmax(row)
					ec.Observe(l, qh, p, row, inv)
				}
			}
		}
	}
	check := func(m int) {
		for l := range ec.heads {
			for qh := range ec.heads[l] {
				st := &ec.heads[l][qh]
				kvh := qh / ec.group[l]
				kept := 0
				for s := 0; s < m; s++ {
					if st.gone[s] {
						continue
					}
					kept++
					var tot float64
					cnt := int32(0)
					mean := make([]float64, hd)
					for p := 0; p < m; p++ {
						if int(st.m.owner[p]) == s {
							tot += st.m.alpha[p]
							cnt++
							for i := range mean {
								mean[i] += st.m.alpha[p] * float64(keys[p][kvh*hd+i])
							}
						}
					}
					if math.Abs(tot-1) > 1e-9 || cnt != st.m.count[s] || st.m.owner[s] != int32(s) {
						t.Fatalf("layer %d head %d, %d positions: entry %d: weights sum to %v, %d positions, count %d", l, qh, m, s, tot, cnt, st.m.count[s])
					}
					for i := range mean {
						if math.Abs(mean[i]-st.m.kbar[s*hd+i]) > 1e-9 {
							t.Fatalf("layer %d head %d, %d positions: entry %d: mean key %d is %v, want %v", l, qh, m, s, i, st.m.kbar[s*hd+i], mean[i])
						}
					}
				}
				if kept != st.nkept || kept > ec.budget {
					t.Fatalf("layer %d head %d: %d entries, nkept %d, budget %d", l, qh, kept, st.nkept, ec.budget)
				}
			}
		}
	}
	run(0, 60)
	check(60)
	if err := c.Truncate(45); err != nil {
		t.Fatal(err)
	}
	check(45)
	run(45, n)
	check(n)
}

// TestEMSHeadsPDText (TERSE_EMS_HEADS=spec, e.g. ems:0.25) logs, for one
// 511-token window of pdtext-llama-28m, the share of each query head's
// evictions that merged rather than dropped: how EMS's threshold splits
// heads into redundant (merging) and sparse (evicting) ones.
func TestEMSHeadsPDText(t *testing.T) {
	spec := os.Getenv("TERSE_EMS_HEADS")
	if spec == "" {
		t.Skip("TERSE_EMS_HEADS not set")
	}
	dir := testshared.Path(t, "models/pdtext-llama-28m")
	raw, err := os.ReadFile(testshared.Path(t, "data/pdtext-val.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := load.Open(dir, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	sp, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	m := ck.Model
	tokens := eval.Stream(ck.Tokenizer, string(raw), "")[:511]
	var ec *evictCache
	r := model.NewRunner(m, 0)
	r.NewCache = func(n int) (model.KVCache, error) {
		c, err := sp.New(&m.Config, n)
		ec, _ = c.(*evictCache)
		return c, err
	}
	out := make([]float32, len(tokens)*m.Config.VocabSize)
	if err := r.Logits(tokens, out); err != nil {
		t.Fatal(err)
	}
	if ec == nil {
		t.Fatalf("%s: not an eviction cache", spec)
	}
	for l := range ec.heads {
		line := ""
		for h := range ec.heads[l] {
			st := &ec.heads[l][h]
			line += fmt.Sprintf(" %3.0f%%", 100*float64(st.merged)/float64(max(1, st.merged+st.dropped)))
		}
		t.Logf("%s layer %d, merged share per head:%s", spec, l, line)
	}
}

// TestEMSBytes: a merging ems cache counts the float32 key copy its
// similarities are measured on besides the inner cache; the evict-only
// form (:e) holds no copy.
func TestEMSBytes(t *testing.T) {
	cfg := testCfg
	const n = 40
	for _, tc := range []struct {
		spec string
		copy bool
	}{{"ems:0.5", true}, {"ems:0.5+q8_0", true}, {"ems:0.5:e", false}, {"ems:0.5:e+q8_0", false}} {
		sp, err := Parse(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		c, err := sp.New(&cfg, n)
		if err != nil {
			t.Fatal(err)
		}
		inner := c.(*evictCache).KVCache.Bytes()
		want := inner
		if tc.copy {
			for l := range cfg.NLayers {
				want += 4 * int64(n*cfg.KVDim(l))
			}
		}
		if got := c.Bytes(); got != want {
			t.Errorf("%s: Bytes %d, want %d (inner %d)", tc.spec, got, want, inner)
		}
	}
}
