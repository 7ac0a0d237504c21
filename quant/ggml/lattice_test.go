package ggml

import (
	"bytes"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

var latticeTestTypes = []tensor.DType{tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ2_S, tensor.IQ3_XXS, tensor.IQ3_S}

// latticeTestBlock returns a block of dt quantized by ggml from random
// values with random importance.
func latticeTestBlock(t *testing.T, r *rand.Rand, dt tensor.DType) (x, imp []float32, blk []byte) {
	t.Helper()
	n := dt.BlockSize()
	x, imp = make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
		imp[i] = float32(math.Exp(r.NormFloat64()))
	}
	blk = make([]byte, dt.BlockBytes())
	if err := Quantize(dt, x, blk, imp); err != nil {
		t.Fatal(err)
	}
	return x, imp, blk
}

// randomCode returns a random valid code of the format.
func randomCode(r *rand.Rand, f *latticeFormat) RunCode {
	c := RunCode{Signs: uint8(r.IntN(256))}
	c.Index[0] = uint16(r.IntN(len(f.grid)))
	if f.dim == 4 {
		c.Index[1] = uint16(r.IntN(len(f.grid)))
	}
	if f.parity && oddBits(c.Signs) {
		c.Signs ^= 1 << uint(r.IntN(8))
	}
	return c
}

// TestLatticeCodes: reading a run's code and writing it back leaves the
// block as it was, Values agrees bit for bit with Dequantize, and a
// random code written into a run dequantizes to Values of that code while
// the other runs stay as they were.
func TestLatticeCodes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, dt := range latticeTestTypes {
		f := latticeFormats[dt]
		for trial := 0; trial < 20; trial++ {
			_, _, blk := latticeTestBlock(t, r, dt)
			var lb LatticeBlock
			if err := lb.Reset(dt, blk); err != nil {
				t.Fatal(err)
			}
			y := make([]float32, dt.BlockSize())
			if err := Dequantize(dt, blk, y); err != nil {
				t.Fatal(err)
			}
			var v [8]float32
			cp := append([]byte(nil), blk...)
			for run := 0; run < lb.Runs(); run++ {
				c := lb.Code(blk, run)
				if f.parity && oddBits(c.Signs) {
					t.Fatalf("%s: run %d read with odd signs %08b", dt, run, c.Signs)
				}
				lb.Encode(cp, run, c)
				lb.Values(run, c, v[:])
				for j, vj := range v {
					if math.Float32bits(vj) != math.Float32bits(y[8*run+j]) {
						t.Fatalf("%s: run %d element %d: Values %g, Dequantize %g", dt, run, j, vj, y[8*run+j])
					}
				}
			}
			if !bytes.Equal(cp, blk) {
				t.Fatalf("%s: rewriting every run's own code changed the block", dt)
			}
			run := r.IntN(lb.Runs())
			c := randomCode(r, f)
			lb.Encode(cp, run, c)
			if got := lb.Code(cp, run); got != c {
				t.Fatalf("%s: wrote %+v, read %+v", dt, c, got)
			}
			y2 := make([]float32, dt.BlockSize())
			if err := Dequantize(dt, cp, y2); err != nil {
				t.Fatal(err)
			}
			lb.Values(run, c, v[:])
			for i := range y2 {
				want := y[i]
				if i/8 == run {
					want = v[i%8]
				}
				if math.Float32bits(y2[i]) != math.Float32bits(want) {
					t.Fatalf("%s: after writing run %d, element %d is %g, want %g", dt, run, i, y2[i], want)
				}
			}
		}
	}
}

// bruteNearest returns the least weighted error Σ w_j(x_j − v_j)² over
// every code of run r (every grid index or pair and every allowed sign
// pattern).
func bruteNearest(lb *LatticeBlock, r int, x, w []float32) float64 {
	f := lb.f
	best := math.Inf(1)
	var v [8]float32
	n1 := len(f.grid)
	n2 := 1
	if f.dim == 4 {
		n2 = len(f.grid)
	}
	for i := 0; i < n1; i++ {
		for k := 0; k < n2; k++ {
			c := RunCode{Index: [2]uint16{uint16(i), uint16(k)}}
			lb.Values(r, c, v[:])
			// every sign pattern, from the unsigned values
			for s := 0; s < 256; s++ {
				if f.parity && bits.OnesCount8(uint8(s))%2 != 0 {
					continue
				}
				var e float64
				for j := 0; j < 8; j++ {
					vj := float64(v[j])
					if s>>uint(j)&1 != 0 {
						vj = -vj
					}
					d := float64(x[j]) - vj
					e += float64(w[j]) * d * d
				}
				best = min(best, e)
			}
		}
	}
	return best
}

// TestLatticeNearestBruteForce: Nearest without a metric finds the code of
// least weighted error, as an exhaustive search over every code does.
func TestLatticeNearestBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, dt := range latticeTestTypes {
		trials := 6
		if latticeFormats[dt].dim == 4 {
			// 65536 or 262144 index pairs × 256 sign patterns
			trials = 1
			if testing.Short() {
				continue
			}
		}
		for trial := 0; trial < trials; trial++ {
			x, imp, blk := latticeTestBlock(t, r, dt)
			var lb LatticeBlock
			if err := lb.Reset(dt, blk); err != nil {
				t.Fatal(err)
			}
			run := r.IntN(lb.Runs())
			xr, wr := x[8*run:8*run+8], imp[8*run:8*run+8]
			var v [8]float32
			c := lb.Nearest(run, xr, wr, nil, 1, v[:])
			var got [8]float32
			lb.Values(run, c, got[:])
			if got != v {
				t.Fatalf("%s: Nearest's values %v, its code's %v", dt, v, got)
			}
			if latticeFormats[dt].parity && oddBits(c.Signs) {
				t.Fatalf("%s: odd sign pattern %08b", dt, c.Signs)
			}
			var e float64
			for j := range v {
				d := float64(xr[j]) - float64(v[j])
				e += float64(wr[j]) * d * d
			}
			want := bruteNearest(&lb, run, xr, wr)
			if e > want*(1+1e-12)+1e-300 {
				t.Errorf("%s: trial %d: Nearest's weighted error %.12g, exhaustive %.12g", dt, trial, e, want)
			}
		}
	}
}

// TestLatticeNearestMetric: with a metric, Nearest's choice is never worse
// in that metric than the diagonal-weighted best point.
func TestLatticeNearestMetric(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, dt := range latticeTestTypes {
		for trial := 0; trial < 10; trial++ {
			x, _, blk := latticeTestBlock(t, r, dt)
			var lb LatticeBlock
			if err := lb.Reset(dt, blk); err != nil {
				t.Fatal(err)
			}
			// m = AᵀA + I, a random positive-definite metric
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
			run := r.IntN(lb.Runs())
			xr := x[8*run : 8*run+8]
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

// TestLatticeReset rejects other types and wrong lengths.
func TestLatticeReset(t *testing.T) {
	var lb LatticeBlock
	if err := lb.Reset(tensor.Q4_K, make([]byte, 144)); err == nil {
		t.Error("Q4_K accepted as a lattice type")
	}
	if err := lb.Reset(tensor.IQ2_XS, make([]byte, 10)); err == nil {
		t.Error("a 10-byte IQ2_XS block accepted")
	}
	r := rand.New(rand.NewPCG(9, 9))
	for _, dt := range latticeTestTypes {
		if !LatticeSupported(dt) {
			t.Errorf("%s not supported", dt)
		}
		// non-finite values: some valid code, no panic
		_, _, blk := latticeTestBlock(t, r, dt)
		if err := lb.Reset(dt, blk); err != nil {
			t.Fatal(err)
		}
		nan := float32(math.NaN())
		x := []float32{nan, 1, 2, nan, 0, 0, 0, 0}
		w := []float32{1, 1, 1, 1, 1, 1, 1, 1}
		var v [8]float32
		c := lb.Nearest(0, x, w, nil, 4, v[:])
		if latticeFormats[dt].parity && oddBits(c.Signs) {
			t.Errorf("%s: odd signs for non-finite values", dt)
		}
	}
}

// BenchmarkLatticeNearest places one run with the metric, per type.
func BenchmarkLatticeNearest(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, dt := range latticeTestTypes {
		b.Run(dt.String(), func(b *testing.B) {
			t := &testing.T{}
			x, imp, blk := latticeTestBlock(t, r, dt)
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
