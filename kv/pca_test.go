package kv

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terse-llm/terse/model"
)

// TestSymEigen checks the Jacobi solver: A·v = λ·v for every returned
// pair, and the eigenvectors are orthonormal.
func TestSymEigen(t *testing.T) {
	for _, n := range []int{1, 2, 5, 64} {
		rng := rand.New(rand.NewPCG(uint64(n), 3))
		a := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := i; j < n; j++ {
				x := rng.NormFloat64()
				a[i*n+j], a[j*n+i] = x, x
			}
		}
		orig := append([]float64(nil), a...)
		vals, vecs := symEigen(a, n)
		for i := 0; i < n; i++ {
			for r := 0; r < n; r++ {
				var av float64
				for c := 0; c < n; c++ {
					av += orig[r*n+c] * vecs[c*n+i]
				}
				if d := math.Abs(av - vals[i]*vecs[r*n+i]); d > 1e-9*float64(n) {
					t.Fatalf("n %d: (A·v_%d)[%d] off by %g", n, i, r, d)
				}
			}
			for j := 0; j < n; j++ {
				var dot float64
				for r := 0; r < n; r++ {
					dot += vecs[r*n+i] * vecs[r*n+j]
				}
				want := 0.0
				if i == j {
					want = 1
				}
				if math.Abs(dot-want) > 1e-9 {
					t.Fatalf("n %d: v_%d·v_%d = %g, want %g", n, i, j, dot, want)
				}
			}
		}
	}
}

// lowRankRows are rows μ + A·g + noise: rank r around a mean, with a
// little isotropic noise.
type lowRankRows struct {
	a    [][]float32 // d × r
	mean []float32
}

func newLowRank(rng *rand.Rand, d, r int) *lowRankRows {
	lr := &lowRankRows{a: make([][]float32, d), mean: make([]float32, d)}
	for i := range lr.a {
		lr.a[i] = make([]float32, r)
		for j := range lr.a[i] {
			lr.a[i][j] = float32(rng.NormFloat64() * 2 / float64(j+1))
		}
		lr.mean[i] = float32(rng.NormFloat64())
	}
	return lr
}

func (lr *lowRankRows) row(rng *rand.Rand) []float32 {
	g := make([]float64, len(lr.a[0]))
	for j := range g {
		g[j] = rng.NormFloat64()
	}
	x := make([]float32, len(lr.a))
	for i := range x {
		s := float64(lr.mean[i]) + 0.01*rng.NormFloat64()
		for j, gj := range g {
			s += float64(lr.a[i][j]) * gj
		}
		x[i] = float32(s)
	}
	return x
}

// writeTestBasis fits a basis to rows of rank 24 per head (keys and
// values their own) for testCfg and writes it into dir.
func writeTestBasis(t *testing.T, dir string) (path string, gen func(rng *rand.Rand) (k, v []float32)) {
	t.Helper()
	d := testCfg.KVDim(0)
	src := rand.New(rand.NewPCG(5, 6))
	kg, vg := newLowRank(src, d, 24), newLowRank(src, d, 24)
	gen = func(rng *rand.Rand) (k, v []float32) { return kg.row(rng), vg.row(rng) }
	f := NewPCAFit(&testCfg)
	c := f.Wrap(model.NewFloatCache(&testCfg, 600))
	rng := rand.New(rand.NewPCG(8, 8))
	for p := 0; p < 600; p++ {
		for l := 0; l < testCfg.NLayers; l++ {
			k, v := gen(rng)
			if err := c.Append(l, k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := f.Basis("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	// Rank 24 of each 64-wide head: the leading 24 directions hold
	// nearly all the variance.
	for l := range b.Layers {
		for h, hb := range b.Layers[l] {
			var all, lead float64
			for i, x := range hb.K.Var {
				all += x
				if i < 24 {
					lead += x
				}
				if i > 0 && x > hb.K.Var[i-1] {
					t.Fatalf("layer %d head %d: variances not decreasing at %d", l, h, i)
				}
			}
			if lead < 0.9999*all {
				t.Errorf("layer %d head %d: leading 24 directions hold %.6f of the key variance", l, h, lead/all)
			}
		}
	}
	path = filepath.Join(dir, "basis.json")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Write(out); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path, gen
}

// TestPCACache runs the common cache checks on pca caches: with every
// direction kept the stored rows are the appended ones to binary16
// rounding (on any data); with half of them, data of rank 24 is kept to
// its noise.
func TestPCACache(t *testing.T) {
	path, gen := writeTestBasis(t, t.TempDir())
	cacheAttention(t, "pca:k1:v1:"+path, 2e-3)
	checkReadKV(t, "pca:k1:v1:"+path)
	checkReadKV(t, "pca:k0.5:v0.25:"+path)
	checkReadKV(t, "pca:k1:v1:b3:"+path)
	checkReadKV(t, "pca:k0.5:v1:b2.5:"+path)
	checkReadKV(t, "pca:k1:v1:b2/3.5:"+path)
	checkReadKV(t, "pca:k0.5:v0.5:b3:s4:"+path)
	cacheAttention(t, "pca:k1:v1:s8:"+path, 2e-3)

	for _, tc := range []struct {
		spec string
		rel  float64
	}{{"pca:k0.5:v0.5", 5e-3}, {"pca:k1:v1:b4", 0.03}, {"pca:k0.5:v0.5:b2", 0.15}, {"pca:k1:v1:b2/4", 0.15}} {
		lowRankCache(t, tc.spec, path, gen, tc.rel)
	}
}

// lowRankCache fills a cache of spec (FILE appended) with 100 positions of
// the rank-24 data its basis was fitted on: attention agrees with the
// stored form and the stored form is within rel of what was appended.
func lowRankCache(t *testing.T, spec, path string, gen func(*rand.Rand) (k, v []float32), rel float64) {
	t.Helper()
	sp, err := Parse(spec + ":" + path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sp.New(&testCfg, 100)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	var ks, vs [][]float32
	for p := 0; p < 100; p++ {
		k, v := gen(rng)
		ks, vs = append(ks, k), append(vs, v)
		for l := 0; l < testCfg.NLayers; l++ {
			if err := c.Append(l, k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkAttention(t, spec, c, rng, 100)
	hd := testCfg.HeadDim
	for h := 0; h < testCfg.NKVHeads; h++ {
		k, v := c.(dequantizer).dequant(1, h, 100)
		sub := func(rows [][]float32) [][]float32 {
			out := make([][]float32, len(rows))
			for p, r := range rows {
				out[p] = r[h*hd : (h+1)*hd]
			}
			return out
		}
		if e := relRMS(k, sub(ks)); e > rel {
			t.Errorf("%s: head %d: rank-24 keys: relative RMS error %.4g > %g", spec, h, e, rel)
		}
		if e := relRMS(v, sub(vs)); e > rel {
			t.Errorf("%s: head %d: rank-24 values: relative RMS error %.4g > %g", spec, h, e, rel)
		}
	}
	if sp.PCABits > 0 {
		// Bytes: round(B·64) bits per head row of keys and of values,
		// plus the float32 means and directions of every head.
		heads := int64(testCfg.NLayers * testCfg.NKVHeads)
		kRowB := (int64(math.Round(sp.PCABits*float64(hd))) + 7) / 8
		vRowB := (int64(math.Round(sp.PCAVBits*float64(hd))) + 7) / 8
		rk, rv := int64(pcaRank(sp.PCAK, hd)), int64(pcaRank(sp.PCAV, hd))
		slack := int64(2 * testCfg.NLayers) // a byte past each layer's keys and values
		if want := heads*100*(kRowB+vRowB) + heads*4*int64(2*hd) + heads*4*(rk+rv)*int64(hd) + slack; c.Bytes() != want {
			t.Errorf("%s: Bytes %d, want %d", spec, c.Bytes(), want)
		}
		return
	}
	// Bytes: binary16 coordinates of 32 + 32 directions, plus the float32
	// means and directions of every head.
	heads := int64(testCfg.NLayers * testCfg.NKVHeads)
	want := heads*100*(32+32)*2 + heads*4*int64(2*hd+64*hd) + int64(2*testCfg.NLayers)
	if c.Bytes() != want {
		t.Errorf("Bytes %d, want %d", c.Bytes(), want)
	}
}

// TestCoordCoder: the greedy allocation spends exactly the bits asked
// for, more on the directions of larger variance, and a coordinate within
// the quantizer's range comes back within half a step.
func TestCoordCoder(t *testing.T) {
	const hd = 64
	vars := make([]float64, hd)
	for i := range vars {
		vars[i] = math.Pow(0.9, float64(i))
	}
	for _, avg := range []float64{1, 2.5, 3, 4.5, 8} {
		cc := newCoordCoder(hd, hd, avg, vars, false)
		var used int
		for i, b := range cc.bits {
			used += int(b)
			if i > 0 && b > cc.bits[i-1] {
				t.Errorf("avg %g: direction %d gets %d bits, more than direction %d's %d", avg, i, b, i-1, cc.bits[i-1])
			}
		}
		if want := int(math.Round(avg * hd)); used != want || cc.rowB != (want+7)/8 {
			t.Errorf("avg %g: %d bits in rows of %d bytes, want %d", avg, used, cc.rowB, want)
		}
		rng := rand.New(rand.NewPCG(2, uint64(avg*10)))
		z, back, row := make([]float32, hd), make([]float32, hd), make([]byte, cc.rowB)
		for trial := 0; trial < 50; trial++ {
			for i := range z {
				z[i] = float32(rng.NormFloat64() * math.Sqrt(vars[i]) * 0.5)
			}
			cc.encode(row, z)
			cc.decode(back, row)
			checkFastDecode(t, &cc, row, back)
			for i := range z {
				b := int(cc.bits[i])
				if b == 0 {
					if back[i] != 0 {
						t.Fatalf("avg %g: dropped direction %d decodes to %g", avg, i, back[i])
					}
					continue
				}
				lim := float32(int(1)<<b/2) * cc.step[i]
				if z[i] >= -lim && z[i] < lim && math.Abs(float64(back[i]-z[i])) > float64(cc.step[i])/2*1.0001 {
					t.Fatalf("avg %g: direction %d (%d bits, step %g): %g decodes to %g", avg, i, b, cc.step[i], z[i], back[i])
				}
			}
		}
		// Lloyd–Max codes: each coordinate decodes to the codebook level
		// nearest it (scaled by its standard deviation).
		lc := newCoordCoder(hd, hd, avg, vars, true)
		for trial := 0; trial < 50; trial++ {
			for i := range z {
				z[i] = float32(rng.NormFloat64() * math.Sqrt(vars[i]))
			}
			lc.encode(row, z)
			lc.decode(back, row)
			checkFastDecode(t, &lc, row, back)
			for i := range z {
				b := int(lc.bits[i])
				if b == 0 {
					continue
				}
				sd := float32(math.Sqrt(vars[i]))
				best := float32(math.Inf(1))
				for _, lv := range lmBook(b).level {
					best = min(best, float32(math.Abs(float64(z[i]-lv*sd))))
				}
				if d := float32(math.Abs(float64(back[i] - z[i]))); d > best*1.0001+1e-6 {
					t.Fatalf("avg %g lloyd: direction %d (%d bits): %g decodes to %g, a level %g away exists", avg, i, b, z[i], back[i], best)
				}
			}
		}
	}
}

// checkFastDecode checks that decoding row with a byte of slack past it
// (the tables' path) gives want, what the plain path gave.
func checkFastDecode(t *testing.T, cc *coordCoder, row []byte, want []float32) {
	t.Helper()
	slack := append(append([]byte(nil), row...), 0xff)
	got := make([]float32, len(want))
	cc.decode(got, slack)
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("coordinate %d: %g through the tables, %g bit by bit", i, got[i], want[i])
		}
	}
}

// TestPCASpecErrors: a bad spec or basis file is an error naming it.
func TestPCASpecErrors(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeTestBasis(t, dir)
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"head_dim": 64, "layers": [[{"k": {"mean": [1]}}]]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	notJSON := filepath.Join(dir, "x.json")
	if err := os.WriteFile(notJSON, []byte("nope"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ spec, want string }{
		{"pca", "FILE"},
		{"pca:k0.5", "FILE"},
		{"pca:k0:" + path, "fraction"},
		{"pca:k1.5:" + path, "fraction"},
		{"pca:k0.5:k0.5:" + path, "twice"},
		{"pca:b0.5:" + path, "bits"},
		{"pca:b9:" + path, "bits"},
		{"pca:b3/0:" + path, "bits"},
		{"pca:s65:" + path, "sink"},
		{"pca:s1:s1:" + path, "twice"},
		{"pca:" + filepath.Join(dir, "missing.json"), "missing.json"},
		{"pca:" + bad, "bad.json"},
		{"pca:" + notJSON, "x.json"},
	} {
		_, err := Parse(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want an error mentioning %q", tc.spec, err, tc.want)
		}
	}
	// A basis of another shape is refused by New.
	sp, err := Parse("pca:" + path)
	if err != nil {
		t.Fatal(err)
	}
	other := testCfg
	other.NLayers = 3
	if _, err := sp.New(&other, 10); err == nil || !strings.Contains(err.Error(), "layers") {
		t.Errorf("New for a 3-layer model with a 2-layer basis: %v", err)
	}
	if got := sp.String(); got != "pca:k0.5:v0.5:"+path {
		t.Errorf("String %q", got)
	}
	for _, spec := range []string{"pca:k0.5:v0.5:" + path, "pca:k1:v0.25:b3.5:" + path, "pca:k1:v1:b2.5/3:" + path, "pca:k1:v1:b3:s1:" + path, "pca:k0.5:v0.5:s3:" + path, "pca:k1:v1:b3:l:" + path, "pca:k1:v1:b3:a1/-1:l:" + path} {
		sp, err := Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(sp.String())
		if err != nil || sp.String() != spec || back.String() != spec {
			t.Errorf("round trip of %q: %q, %v", spec, sp.String(), err)
		}
	}
}

// TestPCALayerBits: per-layer offsets set each layer's row size, a count
// that is not one per layer is an error, and offsets need bB.
func TestPCALayerBits(t *testing.T) {
	path, gen := writeTestBasis(t, t.TempDir())
	sp, err := Parse("pca:k1:v1:b3/2:a1/-0.5:" + path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sp.New(&testCfg, 50)
	if err != nil {
		t.Fatal(err)
	}
	pc := c.(*pcaCache)
	if want := []int{32, 20}; pc.kRowB[0] != want[0] || pc.kRowB[1] != want[1] {
		t.Errorf("key rows of %v bytes, want %v", pc.kRowB, want)
	}
	if want := []int{24, 12}; pc.vRowB[0] != want[0] || pc.vRowB[1] != want[1] {
		t.Errorf("value rows of %v bytes, want %v", pc.vRowB, want)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for p := 0; p < 50; p++ {
		for l := 0; l < testCfg.NLayers; l++ {
			k, v := gen(rng)
			if err := c.Append(l, k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkAttention(t, sp.String(), c, rng, 50)
	sp, err = Parse("pca:k1:v1:b3:a1/0/0:" + path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.New(&testCfg, 50); err == nil || !strings.Contains(err.Error(), "3 per-layer bit offsets for 2 layers") {
		t.Errorf("three offsets for two layers: %v", err)
	}
	if _, err := Parse("pca:k1:v1:a1/0:" + path); err == nil || !strings.Contains(err.Error(), "need bB") {
		t.Errorf("offsets without bits: %v", err)
	}
}
