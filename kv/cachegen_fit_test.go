package kv

import (
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/internal/atomicfile"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
)

// ropeMatrix is RoPE's rotation of position n as an explicit hd×hd
// matrix (column j the unit vector e_j turned by model.ShiftKeys).
func ropeMatrix(cfg *model.Config, n int) []float64 {
	hd := cfg.HeadDim
	r := make([]float64, hd*hd)
	for j := 0; j < hd; j++ {
		e := make([]float32, hd)
		e[j] = 1
		model.ShiftKeys(cfg, &model.KVBlock{Len: 1, KVDim: []int{hd}, K: [][]float32{e}, V: [][]float32{nil}}, n)
		for i := 0; i < hd; i++ {
			r[i*hd+j] = float64(e[i])
		}
	}
	return r
}

func TestCacheGenRopeMetric(t *testing.T) {
	for _, style := range []model.RopeStyle{model.RopeInterleaved, model.RopeHalf} {
		cfg := &model.Config{NLayers: 1, HeadDim: 8, RopeTheta: 10000, RopeStyle: style, NHeads: 1, NKVHeads: 1, Dim: 8}
		hd, ctx := cfg.HeadDim, 5
		rng := rand.New(rand.NewPCG(1, 2))
		q := make([]float32, hd*hd)
		for i := 0; i < hd; i++ {
			for j := i; j < hd; j++ {
				x := float32(rng.NormFloat64())
				q[i*hd+j], q[j*hd+i] = x, x
			}
		}
		g := &CacheGenFit{rt: ropeTable{cfg: cfg, hd: hd}, ctx: ctx}
		got := g.ropeMetric(q)
		want := make([]float64, hd*hd)
		for n := 0; n < ctx; n++ {
			r := ropeMatrix(cfg, n)
			for i := 0; i < hd; i++ {
				for j := 0; j < hd; j++ {
					var s float64
					for a := 0; a < hd; a++ {
						for b := 0; b < hd; b++ {
							s += r[a*hd+i] * float64(q[a*hd+b]) * r[b*hd+j]
						}
					}
					want[i*hd+j] += s / float64(ctx)
				}
			}
		}
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-5 {
				t.Fatalf("style %v: metric[%d] = %g, want %g", style, i, got[i], want[i])
			}
		}
	}
}

// TestCGFit writes the transform basis of pdtext-llama-28m (keys before
// RoPE) to $CGFIT, fitted on data/pdtext-calib.txt (CGFIT_WIN windows of
// 512, default 16); skipped unless CGFIT is set.
func TestCGFit(t *testing.T) {
	out := os.Getenv("CGFIT")
	if out == "" {
		t.Skip("CGFIT unset")
	}
	win := 16
	if s := os.Getenv("CGFIT_WIN"); s != "" {
		var err error
		if win, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	ck, err := load.Open(testshared.Path(t, "models/pdtext-llama-28m"), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	raw, err := os.ReadFile(testshared.Path(t, "data/pdtext-calib.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ck.Model.Config
	fit := NewCacheGenFit(cfg, 512)
	r := model.NewRunner(ck.Model, 0)
	r.NewCache = func(n int) (model.KVCache, error) { return fit.Wrap(model.NewFloatCache(cfg, n)), nil }
	if _, err := eval.Evaluate(r, eval.Stream(ck.Tokenizer, string(raw), ""), eval.Options{Protocol: eval.ProtocolAll, Ctx: 512, Windows: win, BOS: ck.Tokenizer.BOS()}); err != nil {
		t.Fatal(err)
	}
	b, err := fit.Basis(ck.Model, "pdtext-llama-28m (cachegen transform, keys before RoPE)")
	if err != nil {
		t.Fatal(err)
	}
	f, err := atomicfile.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if err := b.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	for l, heads := range b.Layers {
		for h, hh := range heads {
			t.Logf("layer %d head %d: key var %.3g…%.3g, value var %.3g…%.3g", l, h, hh.K.Var[0], hh.K.Var[len(hh.K.Var)-1], hh.V.Var[0], hh.V.Var[len(hh.V.Var)-1])
		}
	}
}
