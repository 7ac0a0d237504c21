package kv

import (
	"github.com/terse-llm/terse/codec"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
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

// testTransformBasis writes a basis for cfg to a file in t's temporary
// folder: per head random orthonormal directions u_i, scaled to Dirs_i =
// s_i·u_i and Back_i = u_i/s_i (as a weighted fit's are, Dirs_i·Back_j =
// δ_ij), with variances falling by 2^(−i/4) and a random mean.
func testTransformBasis(t *testing.T, cfg *model.Config, seed uint64) (string, *PCABasis) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	hd := cfg.HeadDim
	b := &PCABasis{Model: "test", HeadDim: hd, Positions: 1, Layers: make([][]PCAHead, cfg.NLayers)}
	comp := func() PCAComponents {
		u := make([][]float64, hd)
		for i := range u {
			u[i] = make([]float64, hd)
			for j := range u[i] {
				u[i][j] = rng.NormFloat64()
			}
			for k := 0; k < i; k++ { // Gram–Schmidt
				var d float64
				for j := range u[i] {
					d += u[i][j] * u[k][j]
				}
				for j := range u[i] {
					u[i][j] -= d * u[k][j]
				}
			}
			var nn float64
			for _, x := range u[i] {
				nn += x * x
			}
			for j := range u[i] {
				u[i][j] /= math.Sqrt(nn)
			}
		}
		c := PCAComponents{Mean: make([]float32, hd), Dirs: make([][]float32, hd), Back: make([][]float32, hd), Var: make([]float64, hd)}
		for i := range u {
			s := 0.5 + rng.Float64()
			c.Mean[i] = float32(rng.NormFloat64())
			c.Var[i] = math.Exp2(-float64(i) / 4)
			c.Dirs[i], c.Back[i] = make([]float32, hd), make([]float32, hd)
			for j, x := range u[i] {
				c.Dirs[i][j], c.Back[i][j] = float32(s*x), float32(x/s)
			}
		}
		return c
	}
	for l := range b.Layers {
		b.Layers[l] = make([]PCAHead, cfg.KVDim(l)/hd)
		for h := range b.Layers[l] {
			b.Layers[l][h] = PCAHead{K: comp(), V: comp()}
		}
	}
	path := t.TempDir() + "/basis.json"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, b
}

// TestCacheGenTransform: a transform cache's rows, projected on the
// basis in float64 (keys after undoing RoPE through model.ShiftKeys),
// are within half a bin of the original rows' projections; attention is
// close to the float32 cache's; a decoded (d) cache sees the same values;
// positions past the last full chunk are exact.
func TestCacheGenTransform(t *testing.T) {
	rope := testCfg
	rope.RopeTheta = 10000
	half := rope
	half.RopeStyle = model.RopeHalf
	for _, cfg := range []*model.Config{&testCfg, &rope, &half} {
		path, b := testTransformBasis(t, cfg, 1)
		for _, q := range []string{"q3", "q7", "q3:s", "q7:s"} { // s: static models
			spec := "cachegen:" + q + ":c16:t" + path
			sp, err := Parse(spec)
			if err != nil {
				t.Fatal(err)
			}
			spd, _ := Parse("cachegen:" + q + ":c16:d:t" + path)
			const n = 70
			c, err := sp.New(cfg, n)
			if err != nil {
				t.Fatal(err)
			}
			cd, _ := spd.New(cfg, n)
			f := model.NewFloatCache(cfg, n)
			rng := rand.New(rand.NewPCG(4, 4))
			fill(t, rng, n, c, cd, f)
			cg := c.(*cachegenCache)
			for _, m := range []int{1, 16, 40, n} {
				checkAttention(t, spec, c, rng, m)
			}
			hd, C := cfg.HeadDim, 16
			for l := 0; l < cfg.NLayers; l++ {
				mk, mv, _ := cg.opt.Bins(l, cfg.NLayers)
				for h := 0; h < cfg.KVDim(l)/hd; h++ {
					k, v := cg.dequant(l, h, n)
					kd, vd := cd.(*cachegenCache).dequant(l, h, n)
					if relRMS(k, kd) != 0 || relRMS(v, vd) != 0 {
						t.Fatalf("%s θ %g: layer %d head %d: decoded and coded caches differ", spec, cfg.RopeTheta, l, h)
					}
					fk, fv := (&floatView{f}).dequant(l, h, n)
					fk, fv = round16(fk), round16(fv) // the open chunk is binary16
					for kv, pair := range [2][2][][]float32{{k, fk}, {v, fv}} {
						pc := &b.Layers[l][h].K
						mult := mk
						if kv == 1 {
							pc, mult = &b.Layers[l][h].V, mv
						}
						var sum float64
						for _, x := range pc.Var {
							sum += x
						}
						step := float64(mult) * math.Sqrt(sum/float64(hd))
						for p := 0; p < n; p++ {
							got, want := slices.Clone(pair[0][p]), slices.Clone(pair[1][p])
							if p >= n/C*C {
								if relRMS([][]float32{got}, [][]float32{want}) != 0 {
									t.Fatalf("%s: layer %d head %d position %d: open chunk not exact", spec, l, h, p)
								}
								continue
							}
							if kv == 0 {
								unrope(cfg, got, hd, p, 1, true)
								unrope(cfg, want, hd, p, 1, true)
							}
							for i, d := range pc.Dirs {
								var zg, zw float64
								for j := range d {
									zg += float64(d[j]) * (float64(got[j]) - float64(pc.Mean[j]))
									zw += float64(d[j]) * (float64(want[j]) - float64(pc.Mean[j]))
								}
								if math.Abs(zg-zw) > step/2*1.001+1e-4 {
									t.Fatalf("%s θ %g: layer %d head %d %s position %d: coordinate %d is %g, want %g ± %g", spec, cfg.RopeTheta, l, h, cgName[kv], p, i, zg, zw, step/2)
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestCacheGenTransformErrors(t *testing.T) {
	path, _ := testTransformBasis(t, &testCfg, 2)
	for _, tc := range []struct{ spec, err string }{
		{"cachegen:t", "no basis file"},
		{"cachegen:g8:t" + path, "anchor groups"},
		{"cachegen:t/nonexistent/basis.json", "no such file"},
		{"cachegen:q4:s", "need a transform"},
		{"cachegen:s1:t" + path, "takes no value"},
	} {
		if _, err := Parse(tc.spec); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, want an error containing %q", tc.spec, err, tc.err)
		}
	}
	sp, err := Parse("cachegen:q6:t" + path)
	if err != nil {
		t.Fatal(err)
	}
	if got := sp.String(); got != "cachegen:q6:c64:t"+path {
		t.Errorf("spec reads back as %q", got)
	}
	if sps, err := Parse("cachegen:s:q6:c8:t" + path); err != nil || sps.String() != "cachegen:q6:c8:s:t"+path {
		t.Errorf("static spec: %v, reads back as %q", err, sps)
	}
	other := testCfg
	other.NLayers = 3
	if _, err := sp.New(&other, 64); err == nil || !strings.Contains(err.Error(), "layers") {
		t.Errorf("basis of 2 layers for a model of 3: %v", err)
	}
}

// TestCacheGenShared: the caches of one transform spec share its
// transforms (built once, reported by SharedBytes and counted in neither
// Bytes nor CodedSize); a static cache's model codes follow the basis's
// spreads.
func TestCacheGenShared(t *testing.T) {
	path, b := testTransformBasis(t, &testCfg, 3)
	sp, err := Parse("cachegen:q4:c8:s:t" + path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := sp.New(&testCfg, 40)
	c, _ := sp.New(&testCfg, 80)
	ca, cc := a.(*cachegenCache), c.(*cachegenCache)
	if &ca.tf[0][0] != &cc.tf[0][0] {
		t.Fatal("two caches of one spec built their own transforms")
	}
	hd := testCfg.HeadDim
	heads := 0
	for l := range testCfg.NLayers {
		heads += testCfg.KVDim(l) / hd
	}
	want := int64(heads) * 2 * (4*int64(hd+2*hd*hd+1) + int64(hd))
	if ca.SharedBytes() != want || cc.SharedBytes() != want {
		t.Errorf("SharedBytes %d and %d, want %d", ca.SharedBytes(), cc.SharedBytes(), want)
	}
	open := int64(2 * 2 * 8 * testCfg.KVDim(0) * testCfg.NLayers)
	if a.Bytes() != open || c.Bytes() != open {
		t.Errorf("empty caches hold %d and %d bytes, want their open chunks' %d", a.Bytes(), c.Bytes(), open)
	}
	// Codes: a Gaussian of the coordinate's fitted deviation in bins;
	// spreads fall along the basis (Var 2^(−i/4)), so do the codes.
	tf := &ca.tf[1][0]
	for kv := range 2 {
		codes := tf.codes[kv]
		for i := 1; i < hd; i++ {
			if codes[i] > codes[i-1] || codes[i]&128 == 0 {
				t.Fatalf("%s: codes %v do not fall with the spread", cgName[kv], codes)
			}
		}
		pc := b.Layers[1][0].K
		if kv == 1 {
			pc = b.Layers[1][0].V
		}
		if got, want := codes[0], codec.ModelCode(math.Sqrt(pc.Var[0])/float64(tf.step[kv]), true); got != want {
			t.Errorf("%s: coordinate 0 code %d, want %d", cgName[kv], got, want)
		}
	}
	// Another config of the same shape builds its own (a basis is a
	// constant of one model).
	other := testCfg
	d, err := sp.New(&other, 40)
	if err != nil {
		t.Fatal(err)
	}
	if &d.(*cachegenCache).tf[0][0] == &ca.tf[0][0] {
		t.Error("a cache of another config shares the first config's transforms")
	}
}
