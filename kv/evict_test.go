package kv

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/terse-llm/terse/bundled"
	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
)

func TestParseEvict(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sink", "sink:4:w256+f32"},
		{"sink:4:w128", "sink:4:w128+f32"},
		{"sink:0:w64+q8_0", "sink:0:w64+q8_0"},
		{"h2o", "h2o:0.5:r50+f32"},
		{"h2o:0.25", "h2o:0.25:r50+f32"},
		{"h2o:256:r25+kivi:k4v4", "h2o:256:r25+kivi:k4v4:g32:r128"},
		{"H2O:1", "h2o:1:r50+f32"},
	} {
		sp, err := Parse(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := sp.String(); got != tc.want {
			t.Errorf("%q: String %q, want %q", tc.in, got, tc.want)
		}
		if back, err := Parse(sp.String()); err != nil || back.String() != sp.String() {
			t.Errorf("%q: round trip %v, %v", tc.in, back, err)
		}
	}
	for _, bad := range []string{"sink:x", "sink:4:w0", "sink:4:q2", "h2o:0", "h2o:-1", "h2o:1.5", "h2o:0.5:r101", "h2o:0.5:", "h2o+h2o", "sink+sink:4", "q8_0+f32", "h2o+nope"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestEvictAttention runs one query per position, as the engine does, and
// compares every output with float64 attention over the positions the
// method keeps, computed here from the method's definition.
func TestEvictAttention(t *testing.T) {
	cfg := testCfg
	const n = 96
	for _, spec := range []string{"sink:4:w16", "sink:0:w8", "h2o:24", "h2o:0.25:r25", "h2o:0.5:r0", "sink:4:w100", "h2o:1.0",
		"snapkv:24:w8:k5", "snapkv:0.5:w4:k1", "snapkv:30:w40:k3", "ems:24:w8:e", "ems:0.3:w1:e"} {
		t.Run(spec, func(t *testing.T) {
			sp, err := Parse(spec)
			if err != nil {
				t.Fatal(err)
			}
			c, err := sp.New(&cfg, n)
			if err != nil {
				t.Fatal(err)
			}
			ec := c.(*evictCache)
			rng := rand.New(rand.NewPCG(1, 2))
			hd, layer := cfg.HeadDim, 1
			d := cfg.KVDim(layer)
			keys, vals := kvRows(rng, n, d)
			for l := 0; l < cfg.NLayers; l++ {
				for p := 0; p < n; p++ {
					if err := c.Append(l, keys[p], vals[p]); err != nil {
						t.Fatal(err)
					}
				}
			}
			scale := float32(1 / math.Sqrt(float64(hd)))
			for qh := 0; qh < cfg.NHeads; qh++ {
				kvh := qh / (cfg.NHeads / cfg.NKVHeads)
				var kept []int // the reference's kept positions
				acc := map[int]float64{}
				var weights []map[int]float64 // each query's weights
				// refScore is the eviction score of position q at the
				// query of position pos, from the method's definition.
				refScore := func(q, pos int) float64 {
					e := sp.Evict
					local := func(p int) float64 {
						var s float64
						for i := max(0, pos-e.ObsWindow); i < pos; i++ {
							s += weights[i][p]
						}
						return s
					}
					switch e.Score {
					case "snapkv":
						var s float64
						for i := max(0, q-e.Kernel/2); i <= min(pos-1, q+e.Kernel/2); i++ {
							s += local(i)
						}
						return s / float64(e.Kernel)
					case "ems":
						return acc[q]/float64(max(1, pos-q)) + local(q)/float64(max(1, min(pos, e.ObsWindow)))
					}
					return acc[q]
				}
				for pos := 0; pos < n; pos++ {
					q := make([]float32, hd)
					for i := range q {
						q[i] = float32(rng.NormFloat64())
					}
					// The cache, as the engine drives it.
					row := make([]float32, pos+1)
					if err := c.Scores(layer, kvh, q, hd, 1, pos+1, scale, row, pos+1, nil); err != nil {
						t.Fatal(err)
					}
					ec.Mask(layer, qh, pos, row)
					inv := 1 / kernel.Softmax(row)
					ec.Observe(layer, qh, pos, row, inv)
					got := make([]float32, hd)
					if err := c.WeightedSum(layer, kvh, row, got, nil); err != nil {
						t.Fatal(err)
					}
					// The reference.
					if sp.Evict.H2O {
						kept = append(kept, pos)
						if len(kept) > ec.budget {
							victim := -1
							best := 0.0
							for i, p := range kept {
								if x := refScore(p, pos); p <= pos-ec.recent && (victim < 0 || x < best) {
									victim, best = i, x
								}
							}
							if victim >= 0 {
								kept = slices.Delete(kept, victim, victim+1)
							}
						}
					} else {
						kept = kept[:0]
						for p := 0; p <= pos; p++ {
							if p < sp.Evict.Sinks || p > pos-sp.Evict.Window {
								kept = append(kept, p)
							}
						}
					}
					s := make([]float64, len(kept))
					mx := math.Inf(-1)
					for i, p := range kept {
						for j := 0; j < hd; j++ {
							s[i] += float64(q[j]) * float64(keys[p][kvh*hd+j])
						}
						s[i] *= float64(scale)
						mx = math.Max(mx, s[i])
					}
					var z float64
					for i := range s {
						s[i] = math.Exp(s[i] - mx)
						z += s[i]
					}
					for j := 0; j < hd; j++ {
						var want float64
						for i, p := range kept {
							want += s[i] / z * float64(vals[p][kvh*hd+j])
						}
						if g := float64(got[j] * inv); math.Abs(g-want) > 1e-4 {
							t.Fatalf("head %d, position %d, channel %d: %v, want %v (%d kept)", qh, pos, j, g, want, len(kept))
						}
					}
					wq := map[int]float64{}
					for i, p := range kept {
						acc[p] += s[i] / z
						wq[p] = s[i] / z
					}
					weights = append(weights, wq)
					for p, w := range row {
						if w != 0 && !slices.Contains(kept, p) {
							t.Fatalf("head %d, position %d: evicted position %d has weight %g", qh, pos, p, w)
						}
					}
				}
				if len(kept) != min(n, ec.budget) {
					t.Errorf("head %d: %d kept at the end, budget %d", qh, len(kept), ec.budget)
				}
			}
			full := int64(0)
			if f, err := (&Spec{Kind: sp.Kind, Type: sp.Type}).New(&cfg, n); err == nil {
				full = f.Bytes()
			}
			if c.Bytes() != full {
				t.Errorf("Bytes %d, want the inner cache's %d (evicted positions are still stored)", c.Bytes(), full)
			}
			if want := full * int64(min(n, ec.budget)) / n; ec.KeptBytes() != want {
				t.Errorf("KeptBytes %d, want %d (the kept %d of %d positions)", ec.KeptBytes(), want, ec.budget, n)
			}
		})
	}
}

// TestEvictFullBudgetIdentical: with nothing to evict, an eviction cache's
// model outputs (stories260K, through the engine) are bit-identical to the
// float cache's; with eviction they differ.
func TestEvictFullBudgetIdentical(t *testing.T) {
	modelPath, tokPath, _, err := bundled.Extract()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := load.Open(modelPath, load.Options{Tokenizer: tokPath})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, cfg := ck.Model, &ck.Model.Config
	tokens := eval.Stream(ck.Tokenizer, string(bundled.Text()), "")[:100]
	want := make([]float32, len(tokens)*cfg.VocabSize)
	if err := model.NewRunner(m, 0).Logits(tokens, want); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec string
		same bool
	}{{"sink:4:w96", true}, {"h2o:1.0", true}, {"h2o:100", true}, {"ems:1.0", true}, {"ems:100:t-1:s", true}, {"sink:4:w32", false}, {"h2o:0.5", false}, {"ems:0.5", false}, {"ems:0.5:e", false}} {
		sp, err := Parse(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		r := model.NewRunner(m, 0)
		r.NewCache = sp.Factory(cfg)
		got := make([]float32, len(want))
		if err := r.Logits(tokens, got); err != nil {
			t.Fatal(err)
		}
		diff := -1
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				diff = i
				break
			}
		}
		if tc.same && diff >= 0 {
			t.Errorf("%s: logit %d is %v, the float cache's %v", tc.spec, diff, got[diff], want[diff])
		}
		if !tc.same && diff < 0 {
			t.Errorf("%s: logits identical to the float cache's although it evicts", tc.spec)
		}
		// A second window through the same runner (the cache truncated to
		// 0) starts afresh: the same logits as a new runner's.
		other := eval.Stream(ck.Tokenizer, string(bundled.Text()), "")[100:200]
		again := make([]float32, len(want))
		if err := r.Logits(other, again); err != nil {
			t.Fatal(err)
		}
		fresh := model.NewRunner(m, 0)
		fresh.NewCache = sp.Factory(cfg)
		if err := fresh.Logits(other, got); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(again[i]) {
				t.Fatalf("%s: second window through one runner: logit %d is %v, a fresh runner's %v", tc.spec, i, again[i], got[i])
			}
		}
	}
}
