package ggml

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

var iq1TestTypes = []tensor.DType{tensor.IQ1_S, tensor.IQ1_M}

// checkIQ1Block fails unless Values of every run's stored code is bit for
// bit what Dequantize yields for blk.
func checkIQ1Block(t *testing.T, dt tensor.DType, lb *LatticeBlock, blk []byte, what string) {
	t.Helper()
	y := make([]float32, dt.BlockSize())
	if err := Dequantize(dt, blk, y); err != nil {
		t.Fatal(err)
	}
	var v [8]float32
	for run := 0; run < lb.Runs(); run++ {
		lb.Values(run, lb.Code(blk, run), v[:])
		for j, vj := range v {
			if math.Float32bits(vj) != math.Float32bits(y[8*run+j]) {
				t.Fatalf("%s %s: run %d element %d: Values %g, Dequantize %g", dt, what, run, j, vj, y[8*run+j])
			}
		}
	}
}

// TestIQ1LatticeCodes: for IQ1_S and IQ1_M, rewriting each run's own code
// leaves the block as it was; random codes, sub-block scales and (IQ1_S)
// group shifts written into a block read back as written, and Values of
// every run then agrees bit for bit with Dequantize.
func TestIQ1LatticeCodes(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, dt := range iq1TestTypes {
		for trial := 0; trial < 30; trial++ {
			_, _, blk := latticeTestBlock(t, r, dt)
			var lb LatticeBlock
			if err := lb.Reset(dt, blk); err != nil {
				t.Fatal(err)
			}
			if lb.ScaleLevels() != 8 || lb.ShiftPerGroup() != (dt == tensor.IQ1_S) {
				t.Fatalf("%s: ScaleLevels %d ShiftPerGroup %v", dt, lb.ScaleLevels(), lb.ShiftPerGroup())
			}
			checkIQ1Block(t, dt, &lb, blk, "as quantized")
			cp := append([]byte(nil), blk...)
			for run := 0; run < lb.Runs(); run++ {
				lb.Encode(cp, run, lb.Code(blk, run))
			}
			if !bytes.Equal(cp, blk) {
				t.Fatalf("%s: rewriting every run's own code changed the block", dt)
			}
			for k := 0; k < 12; k++ {
				run := r.IntN(lb.Runs())
				switch r.IntN(3) {
				case 0:
					c := RunCode{Index: [2]uint16{uint16(r.IntN(2048))}, Shift: r.IntN(2) == 0}
					lb.Encode(cp, run, c)
					got := lb.Code(cp, run)
					if dt == tensor.IQ1_S {
						c.Shift = lb.Shift(run) // the group's
					}
					if got != c {
						t.Fatalf("%s: wrote %+v into run %d, read %+v", dt, c, run, got)
					}
				case 1:
					ls := r.IntN(8)
					lb.SetScaleIndex(cp, run, ls)
					if got := lb.ScaleIndex(cp, run); got != ls {
						t.Fatalf("%s: wrote scale %d, read %d", dt, ls, got)
					}
				default:
					neg := r.IntN(2) == 0
					lb.SetShift(cp, run, neg)
					if dt == tensor.IQ1_S && (lb.Shift(run) != neg || lb.Code(cp, run).Shift != neg) {
						t.Fatalf("%s: wrote shift %v, read %v", dt, neg, lb.Shift(run))
					}
				}
				checkIQ1Block(t, dt, &lb, cp, "after a write")
				// lb's scales and shifts are those the bytes hold
				var fresh LatticeBlock
				if err := fresh.Reset(dt, cp); err != nil {
					t.Fatal(err)
				}
				if fresh.db != lb.db || (dt == tensor.IQ1_S && fresh.neg != lb.neg) {
					t.Fatalf("%s: block state differs from a fresh Reset of its bytes", dt)
				}
			}
		}
	}
}

// bruteNearestIQ1 returns the least weighted error Σ w_j(x_j − v_j)² over
// every code of run r: every grid point with each shift a run may take.
func bruteNearestIQ1(lb *LatticeBlock, r int, x, w []float32) float64 {
	best := math.Inf(1)
	var v [8]float32
	for i := 0; i < 2048; i++ {
		for _, neg := range []bool{false, true} {
			lb.Values(r, RunCode{Index: [2]uint16{uint16(i)}, Shift: neg}, v[:])
			var e float64
			for j := range v {
				d := float64(x[j]) - float64(v[j])
				e += float64(w[j]) * d * d
			}
			best = min(best, e)
		}
	}
	return best
}

// TestIQ1NearestBruteForce: Nearest without a metric finds the code of
// least weighted error, as an exhaustive search does; with a metric its
// choice is never worse in it than the diagonal-weighted best.
func TestIQ1NearestBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, dt := range iq1TestTypes {
		for trial := 0; trial < 20; trial++ {
			x, imp, blk := latticeTestBlock(t, r, dt)
			var lb LatticeBlock
			if err := lb.Reset(dt, blk); err != nil {
				t.Fatal(err)
			}
			run := r.IntN(lb.Runs())
			xr, wr := x[8*run:8*run+8], imp[8*run:8*run+8]
			if trial%2 == 1 {
				// the run's GPTQ-updated values need not fit its scale
				for j := range xr {
					xr[j] *= float32(0.5 + 2*r.Float64())
				}
			}
			var v, got [8]float32
			c := lb.Nearest(run, xr, wr, nil, 1, v[:])
			lb.Values(run, c, got[:])
			if got != v {
				t.Fatalf("%s: Nearest's values %v, its code's %v", dt, v, got)
			}
			if dt == tensor.IQ1_S && c.Shift != lb.Shift(run) {
				t.Fatalf("%s: Nearest changed the group's shift", dt)
			}
			var e float64
			for j := range v {
				d := float64(xr[j]) - float64(v[j])
				e += float64(wr[j]) * d * d
			}
			want := bruteNearestIQ1(&lb, run, xr, wr)
			if e > want*(1+1e-12)+1e-300 {
				t.Errorf("%s: trial %d: Nearest's weighted error %.12g, exhaustive %.12g", dt, trial, e, want)
			}

			var a, m [64]float64
			for i := range a {
				a[i] = r.NormFloat64()
			}
			for i := 0; i < 8; i++ {
				for j := 0; j < 8; j++ {
					for k := 0; k < 8; k++ {
						m[i*8+j] += a[k*8+i] * a[k*8+j]
					}
				}
				m[i*8+i]++
			}
			var w [8]float32
			for j := range w {
				w[j] = float32(m[j*8+j])
			}
			var v1, v2 [8]float32
			lb.Nearest(run, xr, w[:], nil, 1, v1[:])
			lb.Nearest(run, xr, w[:], m[:], 16, v2[:])
			q := func(v [8]float32) float64 {
				var e [8]float64
				for j := range e {
					e[j] = float64(xr[j]) - float64(v[j])
				}
				return quadForm(m[:], &e)
			}
			if q(v2) > q(v1)*(1+1e-12) {
				t.Errorf("%s: metric error %.6g with the metric, %.6g without", dt, q(v2), q(v1))
			}
		}
	}
}

// TestIQ1NearestNonFinite: non-finite values give some valid code, no
// panic.
func TestIQ1NearestNonFinite(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, dt := range iq1TestTypes {
		_, _, blk := latticeTestBlock(t, r, dt)
		var lb LatticeBlock
		if err := lb.Reset(dt, blk); err != nil {
			t.Fatal(err)
		}
		nan := float32(math.NaN())
		var v [8]float32
		c := lb.Nearest(0, []float32{nan, 1, 2, nan, 0, 0, 0, 0}, []float32{1, 1, 1, 1, 1, 1, 1, 1}, nil, 4, v[:])
		if c.Index[0] >= 2048 {
			t.Errorf("%s: index %d", dt, c.Index[0])
		}
	}
}

// BenchmarkIQ1Nearest places one run with the metric, per type.
func BenchmarkIQ1Nearest(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, dt := range iq1TestTypes {
		b.Run(dt.String(), func(b *testing.B) {
			x, imp, blk := latticeTestBlock(&testing.T{}, r, dt)
			var lb LatticeBlock
			if err := lb.Reset(dt, blk); err != nil {
				b.Fatal(err)
			}
			var m [64]float64
			for j := 0; j < 8; j++ {
				m[j*8+j] = float64(imp[j])
			}
			var v [8]float32
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run := i % lb.Runs()
				lb.Nearest(run, x[8*run:8*run+8], imp[8*run:8*run+8], m[:], 16, v[:])
			}
		})
	}
}
