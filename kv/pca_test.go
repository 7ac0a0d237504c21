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

	sp, err := Parse("pca:k0.5:v0.5:" + path)
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
	checkAttention(t, "pca:k0.5:v0.5", c, rng, 100)
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
		if e := relRMS(k, sub(ks)); e > 5e-3 {
			t.Errorf("head %d: rank-24 keys through 32 directions: relative RMS error %.4g", h, e)
		}
		if e := relRMS(v, sub(vs)); e > 5e-3 {
			t.Errorf("head %d: rank-24 values through 32 directions: relative RMS error %.4g", h, e)
		}
	}
	// Bytes: binary16 coordinates of 32 + 32 directions, plus the float32
	// means and directions of every head.
	heads := int64(testCfg.NLayers * testCfg.NKVHeads)
	want := heads*100*(32+32)*2 + heads*4*int64(2*hd+64*hd)
	if c.Bytes() != want {
		t.Errorf("Bytes %d, want %d", c.Bytes(), want)
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
	back, err := Parse(sp.String())
	if err != nil || back.String() != sp.String() {
		t.Errorf("round trip of %q: %v, %v", sp.String(), back, err)
	}
}
