package kv

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/terse-llm/terse/model"
)

// TestWeightedBasis fits plain and weighted bases to keys and values of
// anisotropic covariance, with queries and a value metric that weigh some
// directions far more than others, and checks: the weighted directions
// and back directions are biorthogonal; each weighted coordinate's
// variance on the data is its Var; and keeping the leading r directions
// costs less weighted error (Δkᵀ·E[qqᵀ]·Δk, Δvᵀ·M·Δv) with the weighted
// basis than with the plain one, which is optimal for the plain error
// only. A cache built on the weighted basis then keeps every row to
// binary16 rounding with all directions kept.
func TestWeightedBasis(t *testing.T) {
	const n, r = 3000, 16
	hd, d := testCfg.HeadDim, testCfg.KVDim(0)
	src := rand.New(rand.NewPCG(31, 32))
	kg, vg := newLowRank(src, d, 48), newLowRank(src, d, 48)
	qg := newLowRank(src, hd, 8) // queries live in 8 directions
	f := NewPCAFit(&testCfg)
	c := f.Wrap(model.NewFloatCache(&testCfg, n))
	rng := rand.New(rand.NewPCG(33, 34))
	var ks, vs [][]float32
	for p := 0; p < n; p++ {
		k, v := kg.row(rng), vg.row(rng)
		ks, vs = append(ks, k), append(vs, v)
		for l := 0; l < testCfg.NLayers; l++ {
			if err := c.Append(l, k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := f.WeightedBasis("synthetic"); err == nil {
		t.Fatal("weighted basis without queries: no error")
	}
	q := make([]float32, 4*hd)
	sc := make([]float32, 4*n)
	for l := 0; l < testCfg.NLayers; l++ {
		for h := 0; h < testCfg.NKVHeads; h++ {
			for j := 0; j < 50; j++ {
				for i := 0; i < 4; i++ {
					copy(q[i*hd:], qg.row(rng))
				}
				if err := c.Scores(l, h, q, hd, 4, n, 1, sc, n, nil); err != nil {
					t.Fatal(err)
				}
			}
			m := make([]float64, hd*hd) // a diagonal metric over 100×
			for i := 0; i < hd; i++ {
				m[i*hd+i] = math.Pow(100, float64(i%7)/6)
			}
			if err := f.SetValueMetric(l, h, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	plain, err := f.Basis("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	wb, err := f.WeightedBasis("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	for h := 0; h < testCfg.NKVHeads; h++ {
		qm := make([]float64, hd*hd)
		for i := 0; i < hd; i++ {
			for j := i; j < hd; j++ {
				x := f.qOuter[0][h][i*hd+j] / float64(f.qN[0][h])
				qm[i*hd+j], qm[j*hd+i] = x, x
			}
		}
		for _, tc := range []struct {
			name  string
			rows  [][]float32
			g     []float64
			pl, w PCAComponents
		}{{"k", ks, qm, plain.Layers[0][h].K, wb.Layers[0][h].K}, {"v", vs, f.vMetric[0][h], plain.Layers[0][h].V, wb.Layers[0][h].V}} {
			w := tc.w
			for i := 0; i < hd; i++ {
				for j := 0; j < hd; j++ {
					var s float64
					for x := 0; x < hd; x++ {
						s += float64(w.Dirs[i][x]) * float64(w.Back[j][x])
					}
					want := 0.0
					if i == j {
						want = 1
					}
					if math.Abs(s-want) > 1e-3 {
						t.Fatalf("head %d %s: dir %d · back %d = %g, want %g", h, tc.name, i, j, s, want)
					}
				}
			}
			errOf := func(pc PCAComponents, back [][]float32) (e float64, vr []float64) {
				vr = make([]float64, r)
				x, dx := make([]float64, hd), make([]float64, hd)
				for _, row := range tc.rows {
					x0 := row[h*hd : (h+1)*hd]
					for i := range x {
						x[i] = float64(pc.Mean[i])
					}
					for i := 0; i < r; i++ {
						var z float64
						for j, v := range x0 {
							z += float64(pc.Dirs[i][j]) * (float64(v) - float64(pc.Mean[j]))
						}
						vr[i] += z * z / float64(len(tc.rows))
						for j := range x {
							x[j] += z * float64(back[i][j])
						}
					}
					for i := range dx {
						dx[i] = float64(x0[i]) - x[i]
					}
					for i := range dx {
						for j := range dx {
							e += dx[i] * tc.g[i*hd+j] * dx[j]
						}
					}
				}
				return e / float64(len(tc.rows)), vr
			}
			ep, _ := errOf(tc.pl, tc.pl.Dirs)
			ew, vr := errOf(w, w.Back)
			for i, x := range vr {
				if math.Abs(x-w.Var[i]) > 1e-2*w.Var[i]+1e-9 {
					t.Fatalf("head %d %s: coordinate %d variance %g on the data, Var %g", h, tc.name, i, x, w.Var[i])
				}
			}
			if !(ew < 0.8*ep) {
				t.Errorf("head %d %s: weighted error %g with %d weighted directions, %g with plain ones", h, tc.name, ew, r, ep)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "w.json")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := wb.Write(out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	sp, err := Parse("pca:k1:v1:" + path)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := sp.New(&testCfg, 40)
	if err != nil {
		t.Fatal(err)
	}
	for p := 0; p < 40; p++ {
		for l := 0; l < testCfg.NLayers; l++ {
			if err := pc.Append(l, ks[p], vs[p]); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkAttention(t, "weighted pca", pc, rng, 40)
	for h := 0; h < testCfg.NKVHeads; h++ {
		k, v := pc.(*pcaCache).dequant(0, h, 40)
		var want, got [][]float32
		for p := 0; p < 40; p++ {
			want = append(want, ks[p][h*hd:(h+1)*hd], vs[p][h*hd:(h+1)*hd])
			got = append(got, k[p], v[p])
		}
		if e := relRMS(got, want); e > 2e-3 {
			t.Errorf("head %d: every weighted direction kept, relative RMS error %g", h, e)
		}
	}
}
