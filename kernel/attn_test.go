package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestExpf32(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	xs := []float32{0, -0.0, 1, -1, 0.5, -0.5, 88.7, -87.3, 10, -10, 0.3465736, -0.3465736}
	for i := 0; i < 20000; i++ {
		xs = append(xs, float32(r.Float64()*176-88))
	}
	// The extremes again, among the vector lanes: the SIMD loops take
	// whole vectors and leave a short tail to expf32.
	xs = append([]float32{88.72, 88.7, 88.5, -87.3, -87.9, -88.3, -88.7, 0, 0, 0, 0, 0, 0, 0, 0, 0}, xs...)
	xs = xs[:len(xs)&^15]
	for _, l := range levels() {
		got := append([]float32(nil), xs...)
		withLevel(t, l, func() { ExpSub(got, 0) })
		for i, x := range xs {
			want := math.Exp(float64(x))
			// Below the smallest normal float32 only the absolute error counts.
			if d := math.Abs(float64(got[i])-want) / max(want, 1.2e-38); !(d <= 1e-6) {
				t.Fatalf("%v: exp(%g) = %g, want %g (rel %g)", l, x, got[i], want, d)
			}
		}
	}
	if got := expf32(-100); got != 0 {
		t.Errorf("expf32(-100) = %g", got)
	}
	if got := expf32(100); !math.IsInf(float64(got), 1) {
		t.Errorf("expf32(100) = %g", got)
	}
}

func TestExpSubSiLUMul(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	for _, n := range testLengths() {
		x := randVec(r, n)
		u := randVec(r, n)
		for i := range x {
			x[i] *= 8
		}
		var m float32 = 3
		for _, l := range levels() {
			e := append([]float32(nil), x...)
			g := append([]float32(nil), x...)
			var sum float32
			withLevel(t, l, func() {
				sum = ExpSub(e, m)
				SiLUMul(g, u)
			})
			var want float64
			for i, v := range x {
				w := math.Exp(float64(v - m))
				want += w
				if d := math.Abs(float64(e[i])-w) / w; !(d <= 1e-6) {
					t.Fatalf("%v n=%d: exp[%d] = %g, want %g", l, n, i, e[i], w)
				}
				s := float64(v) / (1 + math.Exp(-float64(v))) * float64(u[i])
				if d := math.Abs(float64(g[i]) - s); !(d <= 1e-6*math.Abs(s)+1e-30) {
					t.Fatalf("%v n=%d: silu·u[%d] = %g, want %g", l, n, i, g[i], s)
				}
			}
			if d := math.Abs(float64(sum) - want); !(d <= 1e-5*want+1e-30) {
				t.Fatalf("%v n=%d: sum %g, want %g", l, n, sum, want)
			}
		}
	}
}

func TestSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	for _, n := range testLengths()[1:] {
		x := randVec(r, n)
		for i := range x {
			x[i] = x[i]*5 - 20
		}
		m := float64(x[0])
		for _, v := range x {
			m = max(m, float64(v))
		}
		for _, l := range levels() {
			y := append([]float32(nil), x...)
			var sum float32
			withLevel(t, l, func() { sum = Softmax(y) })
			var want float64
			for i, v := range x {
				w := math.Exp(float64(v - float32(m))) // the float32 difference, as the kernel
				want += w
				if d := math.Abs(float64(y[i]) - w); !(d <= 1e-6*w) {
					t.Fatalf("%v n=%d: y[%d] = %g, want %g", l, n, i, y[i], w)
				}
			}
			if d := math.Abs(float64(sum) - want); !(d <= 1e-5*want) {
				t.Fatalf("%v n=%d: sum %g, want %g", l, n, sum, want)
			}
		}
	}
}

func TestScoresWeightedSum(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	for _, hd := range []int{8, 16, 24, 64, 80, 128} {
		for _, nq := range []int{1, 2, 3, 4, 5, 9} {
			for _, nk := range []int{1, 3, 4, 7, 33} {
				qs, ks, ds := hd*3, hd*2+5, nk+3
				q := randVec(r, (nq-1)*qs+hd)
				k := randVec(r, (nk-1)*ks+hd)
				for _, l := range levels() {
					name := fmt.Sprintf("%v hd=%d nq=%d nk=%d", l, hd, nq, nk)
					dst := make([]float32, (nq-1)*ds+nk)
					out := make([]float32, hd)
					p := randVec(r, nk)
					withLevel(t, l, func() {
						Scores(dst, ds, q, qs, nq, k, ks, nk, hd, 0.5)
						WeightedSum(out, p, k, ks)
					})
					for i := 0; i < nq; i++ {
						for j := 0; j < nk; j++ {
							var want, mag float64
							for c := 0; c < hd; c++ {
								v := float64(q[i*qs+c]) * float64(k[j*ks+c])
								want += v
								mag += math.Abs(v)
							}
							want *= 0.5
							if d := math.Abs(float64(dst[i*ds+j]) - want); !(d <= 1e-5*mag) {
								t.Fatalf("%s: score[%d][%d] = %g, want %g", name, i, j, dst[i*ds+j], want)
							}
						}
					}
					for c := 0; c < hd; c++ {
						var want, mag float64
						for j := 0; j < nk; j++ {
							v := float64(p[j]) * float64(k[j*ks+c])
							want += v
							mag += math.Abs(v)
						}
						if d := math.Abs(float64(out[c]) - want); !(d <= 1e-5*mag) {
							t.Fatalf("%s: wsum[%d] = %g, want %g", name, c, out[c], want)
						}
					}
				}
			}
		}
	}
}
