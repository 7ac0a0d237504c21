package kv

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/terse-llm/terse/codec"
	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
)

// dequant gives the cache's keys and values as attention sees them.
func (c *cachegenCache) dequant(layer, head, n int) (k, v [][]float32) {
	d := c.kvDim[layer]
	kk, vv := make([]float32, n*d), make([]float32, n*d)
	if err := c.ReadKV(layer, 0, n, kk, vv); err != nil {
		panic(err)
	}
	for p := 0; p < n; p++ {
		k = append(k, kk[p*d+head*c.hd:p*d+(head+1)*c.hd])
		v = append(v, vv[p*d+head*c.hd:p*d+(head+1)*c.hd])
	}
	return k, v
}

// fill appends the same random rows to every cache.
func fill(t *testing.T, rng *rand.Rand, n int, caches ...model.KVCache) {
	t.Helper()
	d := testCfg.KVDim(0)
	for p := 0; p < n; p++ {
		for l := 0; l < testCfg.NLayers; l++ {
			k, v := kvRows(rng, 1, d)
			for _, c := range caches {
				if err := c.Append(l, k[0], v[0]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestCacheGenAttention(t *testing.T) {
	for _, tc := range []struct {
		spec string
		rel  float64 // bound on the relative RMS error of keys, values and sums
	}{
		{"cachegen", 0.01},
		{"cachegen:q4:c16", 0.15},
		{"cachegen:q8:c32:g8", 0.01},
		{"cachegen:q6:c32:d", 0.04},
		{"cachegen:c200", 1e-3}, // one chunk larger than the capacity: all binary16 (relative error ≤ 2^−11)
	} {
		t.Run(tc.spec, func(t *testing.T) {
			sp, err := Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			const n = 150
			c, err := sp.New(&testCfg, n)
			if err != nil {
				t.Fatal(err)
			}
			f := model.NewFloatCache(&testCfg, n)
			rng := rand.New(rand.NewPCG(5, 6))
			fill(t, rng, n, c, f)
			cg := c.(*cachegenCache)
			for _, m := range []int{1, 31, 64, 100, n} {
				checkAttention(t, tc.spec, c, rng, m)
			}
			// Against the float32 cache: every element within half a bin
			// (the bin is the multiplier times at most 1.07 the channel's
			// deviation over its chunk), and attention close.
			for l := 0; l < testCfg.NLayers; l++ {
				mk, mv, _ := cg.opt.Bins(l, testCfg.NLayers)
				for h := 0; h < testCfg.NKVHeads; h++ {
					k, v := cg.dequant(l, h, n)
					fk, fv := (&floatView{f}).dequant(l, h, n)
					fk, fv = round16(fk), round16(fv) // the open chunk is binary16
					if r := relRMS(k, fk); r > tc.rel {
						t.Errorf("layer %d head %d: keys' relative error %.4f, bound %g", l, h, r, tc.rel)
					}
					if r := relRMS(v, fv); r > tc.rel {
						t.Errorf("layer %d head %d: values' relative error %.4f, bound %g", l, h, r, tc.rel)
					}
					for kv, pair := range [2][2][][]float32{{k, fk}, {v, fv}} {
						m := [2]float32{mk, mv}[kv]
						checkBins(t, pair[0], pair[1], cg.C, m, cg.opt.Group > 0)
					}
					w := make([]float32, n)
					for p := range w {
						w[p] = rng.Float32()
					}
					got, want := make([]float32, testCfg.HeadDim), make([]float32, testCfg.HeadDim)
					scratch := make([]float32, c.ScratchSize())
					if err := c.WeightedSum(l, h, w, got, scratch); err != nil {
						t.Fatal(err)
					}
					if err := f.WeightedSum(l, h, w, want, nil); err != nil {
						t.Fatal(err)
					}
					if r := relRMS([][]float32{got}, [][]float32{want}); r > tc.rel {
						t.Errorf("layer %d head %d: weighted sum's relative error %.4f, bound %g", l, h, r, tc.rel)
					}
				}
			}
		})
	}
}

// checkBins checks that decoded rows are within half a bin of the
// originals, chunk by chunk; positions past the last full chunk are exact.
// round16 is x rounded to binary16 and back, as a cachegen cache's open
// chunk holds it (and codes it, once full).
func round16(x [][]float32) [][]float32 {
	out := make([][]float32, len(x))
	for i, r := range x {
		out[i] = make([]float32, len(r))
		for j, v := range r {
			out[i][j] = tensor.F16ToF32(tensor.F32ToF16(v))
		}
	}
	return out
}

func checkBins(t *testing.T, got, want [][]float32, C int, mult float32, anchors bool) {
	t.Helper()
	n, hd := len(want), len(want[0])
	for p0 := 0; p0 < n; p0 += C {
		p1 := min(n, p0+C)
		full := p1-p0 == C
		// Channel means: one bin for the whole plane (head), mult × the
		// root mean square of the channels' deviations, each variance
		// clipped at 16× the median's. Anchors: a bin per channel.
		sds := make([]float64, hd)
		var pamax float64
		for ch := 0; ch < hd; ch++ {
			var s1, s2, amax float64
			for p := p0; p < p1; p++ {
				x := float64(want[p][ch])
				s1, s2, amax = s1+x, s2+x*x, max(amax, math.Abs(x))
			}
			m := float64(p1 - p0)
			sds[ch] = max(math.Sqrt(max(0, s2/m-(s1/m)*(s1/m))), amax/1024)
			pamax = max(pamax, amax)
		}
		var plane float64
		if !anchors {
			vars := make([]float64, hd)
			for ch, sd := range sds {
				vars[ch] = sd * sd
			}
			sorted := slices.Clone(vars)
			slices.Sort(sorted)
			for _, v := range vars {
				plane += min(v, 16*sorted[hd/2])
			}
			plane = max(math.Sqrt(plane/float64(hd)), pamax/(float64(mult)*(1<<22)))
		}
		for ch := 0; ch < hd; ch++ {
			sd := sds[ch]
			if !anchors {
				sd = plane
			}
			half := float64(mult) * sd * 1.07 / 2
			for p := p0; p < p1; p++ {
				e := math.Abs(float64(got[p][ch] - want[p][ch]))
				if (!full && e != 0) || e > half*(1+1e-4)+1e-6 {
					t.Fatalf("position %d channel %d: %v for %v, half bin %g", p, ch, got[p][ch], want[p][ch], half)
				}
			}
		}
	}
}

// floatView reads a float cache as the tests read compressed ones.
type floatView struct{ c *model.FloatCache }

func (f *floatView) dequant(layer, head, n int) (k, v [][]float32) {
	d := testCfg.KVDim(layer)
	kk, vv := make([]float32, n*d), make([]float32, n*d)
	if err := f.c.ReadKV(layer, 0, n, kk, vv); err != nil {
		panic(err)
	}
	hd := testCfg.HeadDim
	for p := 0; p < n; p++ {
		k = append(k, kk[p*d+head*hd:p*d+(head+1)*hd])
		v = append(v, vv[p*d+head*hd:p*d+(head+1)*hd])
	}
	return k, v
}

// TestCacheGenDecoded: keeping chunks decoded changes the speed, not a
// bit of what attention sees.
func TestCacheGenDecoded(t *testing.T) {
	rope := testCfg
	rope.RopeTheta = 10000
	for _, cfg := range []*model.Config{&testCfg, &rope} {
		a, _ := Parse("cachegen:q5:c16")
		b, _ := Parse("cachegen:q5:c16:d")
		ca, _ := a.New(cfg, 80)
		cb, _ := b.New(cfg, 80)
		fill(t, rand.New(rand.NewPCG(1, 1)), 75, ca, cb)
		for l := 0; l < cfg.NLayers; l++ {
			for h := 0; h < cfg.NKVHeads; h++ {
				ka, va := ca.(*cachegenCache).dequant(l, h, 75)
				kb, vb := cb.(*cachegenCache).dequant(l, h, 75)
				if relRMS(ka, kb) != 0 || relRMS(va, vb) != 0 {
					t.Fatalf("RoPE θ %g: layer %d head %d: decoded and coded caches differ", cfg.RopeTheta, l, h)
				}
			}
		}
		ba, bb := ca.Bytes(), cb.Bytes()
		if bb-ba != 4*2*4*16*int64(cfg.KVDim(0))*int64(cfg.NLayers) {
			t.Errorf("decoded chunks counted as %d bytes more, want their float32 size", bb-ba)
		}
	}
}

func TestCacheGenTruncate(t *testing.T) {
	sp, _ := Parse("cachegen:q4:c16")
	c, _ := sp.New(&testCfg, 100)
	cg := c.(*cachegenCache)
	rng := rand.New(rand.NewPCG(9, 9))
	fill(t, rng, 70, c)
	before := make([][2][][]float32, testCfg.NLayers)
	for l := range before {
		before[l][0], before[l][1] = cg.dequant(l, 1, 70)
	}
	bytes0, elems0 := cg.CodedSize()
	for _, n := range []int{70, 64, 41, 40, 0} {
		if err := c.Truncate(n); err != nil {
			t.Fatal(err)
		}
		if c.Len() != n {
			t.Fatalf("Len %d after Truncate(%d)", c.Len(), n)
		}
		for l := range before {
			k, v := cg.dequant(l, 1, n)
			// A cut inside a coded chunk decodes it back into the open
			// chunk, in binary16: the kept positions of that chunk round.
			full := n / 16 * 16
			if n > 0 && (relRMS(k[:full], before[l][0][:full]) != 0 || relRMS(v[:full], before[l][1][:full]) != 0) {
				t.Fatalf("truncated to %d: layer %d: kept positions of coded chunks changed", n, l)
			}
			if n > full && (relRMS(k[full:], round16(before[l][0][full:n])) != 0 || relRMS(v[full:], round16(before[l][1][full:n])) != 0) {
				t.Fatalf("truncated to %d: layer %d: positions decoded back into the open chunk are not their binary16 values", n, l)
			}
		}
		if len(cg.coded[0]) != n/16 {
			t.Fatalf("truncated to %d: %d chunks coded", n, len(cg.coded[0]))
		}
	}
	if b, e := cg.CodedSize(); b != bytes0 || e != elems0 {
		t.Errorf("CodedSize changed by truncation: %d, %d → %d, %d", bytes0, elems0, b, e)
	}
	if want := int64(2 * 2 * 16 * testCfg.KVDim(0) * testCfg.NLayers); c.Bytes() != want || cg.OpenBytes() != want {
		t.Errorf("empty cache holds %d bytes, want its open chunks' %d", c.Bytes(), want)
	}
	// Refill past the old length: coded again, counted again.
	fill(t, rng, 100, c)
	if _, e := cg.CodedSize(); e != elems0+int64(6*16*2*testCfg.KVDim(0)*testCfg.NLayers) {
		t.Errorf("coded elements %d after refilling", e)
	}
	if err := c.Append(0, make([]float32, testCfg.KVDim(0)), make([]float32, testCfg.KVDim(0))); err == nil {
		t.Error("append past the capacity accepted")
	}
}

func TestCacheGenSize(t *testing.T) {
	sp, _ := Parse("cachegen:q6:c32")
	c, _ := sp.New(&testCfg, 96)
	fill(t, rand.New(rand.NewPCG(2, 3)), 96, c)
	cg := c.(*cachegenCache)
	b, e := cg.CodedSize()
	if e != Elements(&testCfg, 96) {
		t.Fatalf("%d elements coded, want %d", e, Elements(&testCfg, 96))
	}
	// The chunks are what the codec writes for them: Encode the same
	// values (its own header and checksum aside).
	var planes int64
	for l := range cg.coded {
		for _, ch := range cg.coded[l] {
			for h := range ch.k {
				planes += int64(len(ch.k[h]) + len(ch.v[h]))
			}
		}
	}
	if planes != b || c.Bytes() != b+int64(2*2*32*testCfg.KVDim(0)*testCfg.NLayers) {
		t.Fatalf("coded %d bytes, planes %d, Bytes %d", b, planes, c.Bytes())
	}
	if bits := float64(b) * 8 / float64(e); bits < 5 || bits > 8 {
		t.Errorf("%.2f bits per element at q6 on Gaussian rows", bits)
	}
	// A chunk's plane decodes with the codec alone.
	x := make([]float32, 32*testCfg.HeadDim)
	mk, _, _ := cg.opt.Bins(1, testCfg.NLayers)
	if err := codec.DecodePlane(cg.coded[1][2].k[1], 32, testCfg.HeadDim, mk, 0, x, testCfg.HeadDim); err != nil {
		t.Fatal(err)
	}
	k, _ := cg.dequant(1, 1, 96)
	for p := 0; p < 32; p++ {
		for j := 0; j < testCfg.HeadDim; j++ {
			if x[p*testCfg.HeadDim+j] != k[64+p][j] {
				t.Fatalf("plane decoded alone differs at %d, %d", p, j)
			}
		}
	}
}

func TestCacheGenParse(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"cachegen", "cachegen:q7.5:c64", ""},
		{"CacheGen:q5.5:c32", "cachegen:q5.5:c32", ""},
		{"cachegen:c16:q4:g8:d", "cachegen:q4:c16:g8:d", ""},
		{"cachegen:q0", "", "want 1…12"},
		{"cachegen:q13", "", "want 1…12"},
		{"cachegen:qx", "", "invalid syntax"},
		{"cachegen:c0", "", "integer"},
		{"cachegen:q4:q5", "", "twice"},
		{"cachegen:z1", "", "unknown field"},
		{"cachegen:dd", "", "no value"},
		{"cachegen::c4", "", "empty field"},
		{"h2o:0.5+cachegen:q4", "h2o:0.5:r50+cachegen:q4:c64", ""},
		{"cachegen:q1:k-1", "", "bits"},
		{"cachegen:q12:e4:v2", "", "bits"},
	} {
		sp, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := sp.String(); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
		if again, err := Parse(sp.String()); err != nil || again.String() != sp.String() {
			t.Errorf("%q does not read back: %v", sp.String(), err)
		}
	}
}

func BenchmarkCacheGenAppend(b *testing.B) {
	sp, _ := Parse("cachegen")
	c, _ := sp.New(&testCfg, 512)
	k, v := kvRows(rand.New(rand.NewPCG(1, 2)), 512, testCfg.KVDim(0))
	b.SetBytes(int64(8 * testCfg.KVDim(0) * testCfg.NLayers))
	for i := 0; b.Loop(); i++ {
		if i%512 == 0 {
			_ = c.Truncate(0)
		}
		for l := 0; l < testCfg.NLayers; l++ {
			_ = c.Append(l, k[i%512], v[i%512])
		}
	}
}

func BenchmarkCacheGenScores(b *testing.B) {
	sp, _ := Parse("cachegen")
	c, _ := sp.New(&testCfg, 512)
	d := testCfg.KVDim(0)
	k, v := kvRows(rand.New(rand.NewPCG(1, 2)), 512, d)
	for p := range 512 {
		for l := 0; l < testCfg.NLayers; l++ {
			_ = c.Append(l, k[p], v[p])
		}
	}
	q := make([]float32, 4*testCfg.HeadDim)
	dst := make([]float32, 4*512)
	scratch := make([]float32, c.ScratchSize())
	b.SetBytes(int64(8 * 512 * testCfg.HeadDim)) // float32 keys scored
	for b.Loop() {
		_ = c.Scores(1, 1, q, testCfg.HeadDim, 4, 512, 0.1, dst, 512, scratch)
	}
}

// TestCacheGenModel runs pdtext-llama-28m with CacheGen caches against
// the float32 cache: finer bins give a lower divergence, q6 is below
// q4_0's and the default (q8) below q8_0's, in fewer bytes (eval's
// measurement protocol, on one short window).
func TestCacheGenModel(t *testing.T) {
	if testing.Short() {
		t.Skip("a model run")
	}
	ck, err := load.Open(testshared.Path(t, "models/pdtext-llama-28m"), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	raw, err := os.ReadFile(testshared.Path(t, "data/pdtext-val.txt"))
	if err != nil {
		t.Fatal(err)
	}
	stream := eval.Stream(ck.Tokenizer, string(raw), eval.DocSeparator)
	m := ck.Model
	base := eval.Options{Protocol: eval.ProtocolLlamaCpp, Ctx: 256, Windows: 1, BOS: ck.Tokenizer.BOS()}
	base.Base, base.BaseName = model.NewRunner(m, 0), "f32"
	kld, bits := map[string]float64{}, map[string]float64{}
	for _, spec := range []string{"q8_0", "q4_0", "cachegen", "cachegen:q4:c32:d", "cachegen:q6:c32:d", "cachegen:q8:c32:d"} {
		sp, err := Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		var last model.KVCache
		r := model.NewRunner(m, 0)
		r.NewCache = func(n int) (model.KVCache, error) {
			c, err := sp.New(&m.Config, n)
			last = c
			return c, err
		}
		res, err := eval.Evaluate(r, stream, base)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		kld[spec], bits[spec] = res.KLDMean, BitsPerElement(last, &m.Config)
		if cs, ok := last.(CodedSizer); ok {
			b, e := cs.CodedSize()
			bits[spec] = float64(b) * 8 / float64(e)
		}
		t.Logf("%-20s %.3f bits per element  KLD %.6f", spec, bits[spec], kld[spec])
	}
	if !(kld["cachegen:q8:c32:d"] < kld["cachegen:q6:c32:d"] && kld["cachegen:q6:c32:d"] < kld["cachegen:q4:c32:d"]) {
		t.Errorf("KLD not falling with finer bins: %v", kld)
	}
	if kld["cachegen:q6:c32:d"] >= kld["q4_0"] {
		t.Errorf("cachegen:q6: KLD %g; q4_0 %g", kld["cachegen:q6:c32:d"], kld["q4_0"])
	}
	if kld["cachegen"] >= kld["q8_0"] || bits["cachegen"] >= 8.5 {
		t.Errorf("default CacheGen: KLD %g at %.2f bits; q8_0 %g at 8.5", kld["cachegen"], bits["cachegen"], kld["q8_0"])
	}
}

func FuzzCacheGenParse(f *testing.F) {
	for _, s := range []string{"cachegen", "cachegen:q5.5:c32", "cachegen:q4:k1:v-1:e2:g8:d", "cachegen:e0", "h2o:0.5+cachegen:c16"} {
		f.Add(s)
	}
	cfg := &model.Config{NLayers: 3, NHeads: 2, NKVHeads: 1, HeadDim: 8}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := Parse(s)
		if err != nil || !strings.Contains(s, "cachegen") {
			return
		}
		again, err := Parse(sp.String())
		if err != nil || again.String() != sp.String() {
			t.Fatalf("Parse(%q) = %s, which parses as %v, %v", s, sp, again, err)
		}
		c, err := sp.New(cfg, 5)
		if err != nil {
			t.Fatalf("%s.New: %v", sp, err)
		}
		row := make([]float32, 8)
		for p := 0; p < 5; p++ {
			for l := 0; l < 3; l++ {
				for i := range row {
					row[i] = float32(p*i) - 3
				}
				if err := c.Append(l, row, row); err != nil {
					t.Fatalf("%s: append: %v", sp, err)
				}
			}
		}
	})
}

// TestCacheGenPreRoPE: with RoPE in the config, keys are coded before
// RoPE. Keys that are one key turned by RoPE to each position (plus
// noise) then decode with a far smaller error than the same keys coded
// where they lie (a config without RoPE), in about the same bytes.
func TestCacheGenPreRoPE(t *testing.T) {
	rope := testCfg
	rope.RopeTheta = 10000
	const n = 128
	rng := rand.New(rand.NewPCG(3, 4))
	d := rope.KVDim(0)
	base := make([]float32, d)
	for i := range base {
		base[i] = float32(rng.NormFloat64() * 4)
	}
	keys := make([][]float32, n)
	for p := range keys {
		k := make([]float32, d)
		for i := range k {
			k[i] = base[i] + float32(rng.NormFloat64()*0.05)
		}
		model.ShiftKeys(&rope, &model.KVBlock{Len: 1, KVDim: []int{d}, K: [][]float32{k}, V: [][]float32{nil}}, p)
		keys[p] = k
	}
	sp, err := Parse("cachegen:q6:c64")
	if err != nil {
		t.Fatal(err)
	}
	size, rms := map[float64]int64{}, map[float64]float64{}
	for _, theta := range []float64{0, 10000} {
		cfg := testCfg
		cfg.RopeTheta = theta
		c, err := sp.New(&cfg, n)
		if err != nil {
			t.Fatal(err)
		}
		for p := range n {
			for l := range cfg.NLayers {
				if err := c.Append(l, keys[p], keys[p]); err != nil {
					t.Fatal(err)
				}
			}
		}
		cg := c.(*cachegenCache)
		size[theta], _ = cg.CodedSize()
		got := make([]float32, n*d)
		if err := cg.ReadKV(0, 0, n, got, make([]float32, n*d)); err != nil {
			t.Fatal(err)
		}
		var se float64
		for p := range n {
			for i := range d {
				e := float64(got[p*d+i] - keys[p][i])
				se += e * e
			}
		}
		rms[theta] = math.Sqrt(se / float64(n*d))
	}
	// The bins follow the spread the coder sees: before RoPE only the
	// noise, so a far smaller error in about the same bytes.
	if !(rms[10000] < rms[0]/10 && float64(size[10000]) < 1.3*float64(size[0])) {
		t.Errorf("coded before RoPE: %d bytes, RMS error %.3g; where they lie: %d bytes, %.3g", size[10000], rms[10000], size[0], rms[0])
	}
	t.Logf("coded before RoPE: %d bytes, RMS error %.3g; where they lie: %d bytes, %.3g", size[10000], rms[10000], size[0], rms[0])
}
