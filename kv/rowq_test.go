package kv

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// TestRowFmt quantizes random and adversarial rows in every format and
// checks the stored form against a plain reference: each element within
// half a step of the input (the binary16 scale and minimum as stored), the
// codes' dequantization exact, and dot and axpy equal to float64 over the
// dequantized row.
func TestRowFmt(t *testing.T) {
	const hd = 64
	rng := rand.New(rand.NewPCG(11, 12))
	rows := map[string][]float32{"zeros": make([]float32, hd)}
	normal, constant, big, tiny, spiky := make([]float32, hd), make([]float32, hd), make([]float32, hd), make([]float32, hd), make([]float32, hd)
	for i := range normal {
		normal[i] = float32(rng.NormFloat64())
		constant[i] = 3.25
		big[i] = 65504 * float32(2*(i%2)-1) * float32(1-i%3) / 2
		tiny[i] = float32(rng.NormFloat64()) * 1e-6
		spiky[i] = float32(rng.NormFloat64())
	}
	big[5] = 65504
	big[6] = -65504
	spiky[17] = 300
	rows["normal"], rows["constant"], rows["max magnitudes"], rows["tiny"], rows["spiky"] = normal, constant, big, tiny, spiky
	for _, f := range []rowFmt{{16, 0}, {1, 64}, {2, 32}, {3, 64}, {3, 8}, {4, 32}, {5, 16}, {6, 64}, {7, 32}, {8, 64}, {8, 4}} {
		for name, x := range rows {
			b := make([]byte, f.bytes(hd))
			f.quant(b, x)
			got := make([]float32, hd)
			f.dequant(got, b)
			for i := range x {
				var want, tol float64
				if f.bits == 16 {
					want = float64(f16Round(x[i]))
				} else {
					g := i / f.group
					lo, hi := x[g*f.group], x[g*f.group]
					for _, v := range x[g*f.group : (g+1)*f.group] {
						lo, hi = min(lo, v), max(hi, v)
					}
					levels := 1<<f.bits - 1
					s := float64(tensor.F16ToF32(tensor.F32ToF16((hi - lo) / float32(levels))))
					m := float64(tensor.F16ToF32(tensor.F32ToF16(lo)))
					q := 0.0
					if s != 0 {
						q = math.Max(0, math.Min(float64(levels), math.Floor((float64(x[i])-m)/s+0.5)))
					}
					want = m + s*q
					// Half a step, plus what the binary16 scale's
					// rounding and the clamp at the top cost.
					tol = s/2 + math.Abs(float64(hi-lo))*2e-3 + math.Abs(float64(lo)-m)
					if s < 1e-4 {
						// Steps in binary16's subnormal range round
						// coarsely (to 0 below 6e-8).
						tol += float64(hi - lo)
					}
					if float64(hi-lo)/float64(levels) > 65504 {
						tol = float64(hi-lo) - 65504*float64(levels) + s // the clamp
					}
					if e := math.Abs(float64(got[i]) - float64(x[i])); e > tol+1e-9 {
						t.Errorf("%v %s: element %d: %g stored as %g, error %g over %g", f, name, i, x[i], got[i], e, tol)
					}
				}
				if math.IsNaN(float64(got[i])) || math.IsInf(float64(got[i]), 0) {
					t.Fatalf("%v %s: element %d stored as %g", f, name, i, got[i])
				}
				if math.Abs(float64(got[i])-want) > 1e-6*(math.Abs(want)+1) && f.bits != 16 {
					t.Errorf("%v %s: element %d dequantizes to %g, reference %g", f, name, i, got[i], want)
				}
				if f.bits == 16 && float64(got[i]) != want {
					t.Errorf("binary16 %s: element %d %g, want %g", name, i, got[i], want)
				}
			}
			q := make([]float32, hd)
			for i := range q {
				q[i] = float32(rng.NormFloat64())
			}
			var dot, mag float64
			for i := range q {
				dot += float64(q[i]) * float64(got[i])
				mag += math.Abs(float64(q[i]) * float64(got[i]))
			}
			if d := float64(f.dot(q, b)); math.Abs(d-dot) > 1e-5*(mag+1) {
				t.Errorf("%v %s: dot %g, reference %g", f, name, d, dot)
			}
			acc := make([]float32, hd)
			copy(acc, q)
			f.axpy(acc, 0.5, b)
			for i := range acc {
				if want := float64(q[i]) + 0.5*float64(got[i]); math.Abs(float64(acc[i])-want) > 1e-5*(math.Abs(want)+1) {
					t.Fatalf("%v %s: axpy[%d] %g, reference %g", f, name, i, acc[i], want)
				}
			}
		}
	}
}

// TestRotation: the rotation is H·D/√n, computed here entry by entry from
// the Walsh–Hadamard matrix's definition (H[i][j] = (−1)^popcount(i&j)),
// and inverse undoes it.
func TestRotation(t *testing.T) {
	for _, n := range []int{2, 8, 64, 128} {
		r := newRotation(n)
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		y := make([]float32, n)
		r.forward(y, x)
		for i := range y {
			var want float64
			for j := range x {
				h := 1.0
				if popcount(i&j)%2 == 1 {
					h = -1
				}
				want += h * float64(r.sign[j]) * float64(x[j])
			}
			want /= math.Sqrt(float64(n))
			if math.Abs(float64(y[i])-want) > 1e-5 {
				t.Fatalf("n %d: rotated[%d] = %g, want %g", n, i, y[i], want)
			}
		}
		back := make([]float32, n)
		r.inverse(back, y)
		for i := range x {
			if math.Abs(float64(back[i]-x[i])) > 1e-5 {
				t.Fatalf("n %d: inverse[%d] = %g, want %g", n, i, back[i], x[i])
			}
		}
	}
	if newRotation(48) != nil || newRotation(1) != nil {
		t.Errorf("rotation of a non-power-of-two width")
	}
}

func popcount(x int) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
