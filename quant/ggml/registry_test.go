package ggml_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// The registry walk: every registered type is checked the same way, so a
// new type's file is tested as soon as it registers. (kernel's
// TestQKernelRegistry checks its SIMD kernels against the reference dots
// at every level.)

// TestRegistryHasToday guards against a type silently dropping out of the
// registry: these are the types terse supported before the registry.
func TestRegistryHasToday(t *testing.T) {
	got := ggml.Types()
	for _, dt := range []tensor.DType{
		tensor.F32, tensor.F16, tensor.BF16,
		tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0,
		tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K,
		tensor.IQ4_NL, tensor.IQ4_XS,
		tensor.IQ1_S, tensor.IQ1_M, tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ2_S,
		tensor.IQ3_XXS, tensor.IQ3_S, tensor.TQ1_0, tensor.TQ2_0,
	} {
		if !slices.Contains(got, dt) {
			t.Errorf("%s is not registered", dt)
		}
	}
	if !slices.IsSorted(got) {
		t.Errorf("Types() = %v, not in id order", got)
	}
}

// readOnly lists the registered types terse can read (dequantize, dot) but
// not yet write: the only types allowed a nil Quantize. A type leaves the
// list when its quantizer lands (TestRegistryLayout fails until it does).
var readOnly = []tensor.DType{}

// TestRegistryLayout checks each descriptor against tensor's type table.
func TestRegistryLayout(t *testing.T) {
	for _, dt := range ggml.Types() {
		d, ok := ggml.Lookup(dt)
		if !ok || d.DType != dt {
			t.Fatalf("Lookup(%s) = %v, %v", dt, d.DType, ok)
		}
		if !dt.Known() || d.BlockSize != dt.BlockSize() || d.BlockBytes != dt.BlockBytes() {
			t.Errorf("%s: descriptor has %d elements in %d bytes, tensor %d in %d",
				dt, d.BlockSize, d.BlockBytes, dt.BlockSize(), dt.BlockBytes())
		}
		if p, err := tensor.ParseDType(dt.String()); err != nil || p != dt {
			t.Errorf("%s: ParseDType(String()) = %v, %v", dt, p, err)
		}
		for _, off := range d.Scales {
			if off < 0 || off+2 > d.BlockBytes {
				t.Errorf("%s: scale offset %d outside a %d-byte block", dt, off, d.BlockBytes)
			}
		}
		if d.Dequantize == nil {
			t.Errorf("%s: no dequantizer", dt)
		}
		if ro := slices.Contains(readOnly, dt); ro != (d.Quantize == nil) {
			t.Errorf("%s: quantizer %v, but readOnly lists it: %v", dt, d.Quantize != nil, ro)
		}
		if (d.Dot == nil) != (d.Act == ggml.ActNone) {
			t.Errorf("%s: dot %v with activation format %v", dt, d.Dot != nil, d.Act)
		}
		if d.Act != ggml.ActNone && d.BlockSize%d.Act.BlockSize() != 0 && d.Act.BlockSize()%d.BlockSize != 0 {
			t.Errorf("%s: blocks of %d do not tile with %v activations", dt, d.BlockSize, d.Act)
		}
		if !ggml.Supported(dt) || ggml.QuantizeSupported(dt) != (d.Quantize != nil) {
			t.Errorf("%s: registered but Supported %v, QuantizeSupported %v", dt, ggml.Supported(dt), ggml.QuantizeSupported(dt))
		}
	}
	if _, ok := ggml.Lookup(tensor.DType(5000)); ok {
		t.Error("Lookup of an unknown id succeeded")
	}
}

// maxRoundTripError bounds ‖x − deq(q(x))‖/‖x‖ on Gaussian rows for a type
// of b bits per weight: the scalar quantizers reach 1.5–2.5·2^-b there
// (from Q2_K's 2.6 bits to Q8_0's 8.5; the affine Q4_1 and Q5_1 at the top,
// their minimums costing bits without helping on zero-mean data), so
// 3.5·2^-b leaves a margin of at least 1.4 and still fails a type whose
// values are wrong (errors near 1). The float types
// round each element: F32 not at all, F16 and BF16 by at most 2^-8
// (BF16's 8-bit significand).
func maxRoundTripError(dt tensor.DType) float64 {
	switch dt {
	case tensor.F32:
		return 0
	case tensor.F16, tensor.BF16:
		return 1.0 / 256
	}
	return 3.5 * math.Exp2(-dt.BitsPerWeight())
}

// TestRegistryRoundTrip quantizes random rows with and without importance
// and checks the dequantized error and that the bytes are deterministic.
func TestRegistryRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	const cols, rows = 1024, 16
	x := gaussian(r, cols*rows, 0.02)
	qw := logNormal(r, cols)
	for _, dt := range ggml.Types() {
		d, _ := ggml.Lookup(dt)
		if d.Quantize == nil {
			continue // readOnly (TestRegistryLayout)
		}
		imps := [][]float32{nil, qw}
		if d.NeedsImportance {
			imps = imps[1:]
		}
		for _, imp := range imps {
			b, err := ggml.QuantizeRows(dt, x, cols, imp)
			if err != nil {
				t.Fatalf("%s: %v", dt, err)
			}
			b2, _ := ggml.QuantizeRows(dt, x, cols, imp)
			if !slices.Equal(b, b2) {
				t.Errorf("%s: quantizing twice gave different bytes", dt)
			}
			y := make([]float32, len(x))
			if err := ggml.Dequantize(dt, b, y); err != nil {
				t.Fatalf("%s: %v", dt, err)
			}
			var se, ss float64
			for i := range x {
				e := float64(x[i]) - float64(y[i])
				se += e * e
				ss += float64(x[i]) * float64(x[i])
			}
			rel, bound := math.Sqrt(se/ss), maxRoundTripError(dt)
			t.Logf("%s (importance %v): relative RMS error %.5f (bound %.5f)", dt, imp != nil, rel, bound)
			if !(rel <= bound) {
				t.Errorf("%s (importance %v): relative RMS error %.5f > %.5f", dt, imp != nil, rel, bound)
			}
		}
	}
}

// newAct returns an activation row of cols columns in format f, quantized
// from x.
func newAct(f ggml.ActFormat, x []float32) *ggml.ActRow {
	cols := len(x)
	nb := cols / f.BlockSize()
	a := &ggml.ActRow{Q: make([]int8, cols), D: make([]float32, nb), S: make([]float32, nb), BS: make([]int16, cols/16)}
	f.Quantize(a, x)
	return a
}

// TestRegistryDot checks each reference dot product against the float64
// dot of the dequantized weights with the dequantized activations, for
// weights quantized from random data and for random blocks.
func TestRegistryDot(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	for _, dt := range ggml.Types() {
		d, _ := ggml.Lookup(dt)
		if d.Dot == nil {
			continue
		}
		ab := d.Act.BlockSize()
		for _, nb := range []int{1, 3, 8} {
			cols := nb * max(d.BlockSize, ab)
			for trial := 0; trial < 8; trial++ {
				var w []byte
				if trial%2 == 0 && d.Quantize != nil {
					var err error
					if w, err = ggml.QuantizeRows(dt, gaussian(r, cols, 0.05), cols, logNormal(r, cols)); err != nil {
						t.Fatal(err)
					}
				} else {
					w = randomBlocksOf(r, d, cols/d.BlockSize)
				}
				x := gaussian(r, cols, 1)
				if trial == 7 {
					clear(x[:ab]) // an all-zero activation block
				}
				a := newAct(d.Act, x)
				wf := make([]float32, cols)
				if err := ggml.Dequantize(dt, w, wf); err != nil {
					t.Fatal(err)
				}
				var want, mag float64
				for i, wv := range wf {
					p := float64(wv) * float64(a.Q[i]) * float64(a.D[i/ab])
					want += p
					mag += math.Abs(p)
				}
				got := float64(d.Dot(w, a))
				// float32 scale products and accumulation; the types with
				// minimums split each weight into terms that may cancel.
				if e := math.Abs(got - want); !(e <= 2e-4*mag+1e-30) {
					t.Errorf("%s nb=%d trial %d: Dot = %g, dequantized dot %g (Σ|p| %g)", dt, nb, trial, got, want, mag)
				}
			}
		}
	}
}

// randomBlocksOf returns n random blocks of d's type with moderate,
// finite binary16 scales at the descriptor's scale offsets.
func randomBlocksOf(r *rand.Rand, d ggml.Type, n int) []byte {
	b := make([]byte, n*d.BlockBytes)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for blk := 0; blk < n; blk++ {
		for _, off := range d.Scales {
			h := tensor.F32ToF16(float32(r.NormFloat64() * 0.01))
			b[blk*d.BlockBytes+off], b[blk*d.BlockBytes+off+1] = byte(h), byte(h>>8)
		}
		if d.SetScale != nil {
			d.SetScale(b[blk*d.BlockBytes:(blk+1)*d.BlockBytes], tensor.F32ToF16(float32(r.NormFloat64()*0.01)))
		}
	}
	return b
}

// TestRegistryGrid checks, for every type with a block grid, that the
// grid's codes of a quantized block reproduce it: Value(i, code) is the
// dequantized element bit for bit and Encode(Codes) gives back the bytes.
func TestRegistryGrid(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	for _, dt := range ggml.Types() {
		if !ggml.GridSupported(dt) {
			continue
		}
		d, _ := ggml.Lookup(dt)
		n := d.BlockSize
		b, err := ggml.QuantizeRows(dt, gaussian(r, 4*n, 0.03), 4*n, nil)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, 4*n)
		if err := ggml.Dequantize(dt, b, y); err != nil {
			t.Fatal(err)
		}
		codes := make([]int, n)
		for k := 0; k < 4; k++ {
			blk := b[k*d.BlockBytes : (k+1)*d.BlockBytes]
			g, err := ggml.NewBlockGrid(dt, blk)
			if err != nil {
				t.Fatal(err)
			}
			if g.Len() != n || g.DType() != dt {
				t.Fatalf("%s: grid Len %d DType %s", dt, g.Len(), g.DType())
			}
			g.Codes(blk, codes)
			for i, c := range codes {
				if c < 0 || c >= g.Levels() {
					t.Fatalf("%s: code %d of element %d outside 0..%d", dt, c, i, g.Levels()-1)
				}
				if v := g.Value(i, c); math.Float32bits(v) != math.Float32bits(y[k*n+i]) {
					t.Fatalf("%s block %d element %d: Value %g, Dequantize %g", dt, k, i, v, y[k*n+i])
				}
			}
			re := slices.Clone(blk)
			g.Encode(codes, re)
			if !slices.Equal(re, blk) {
				t.Fatalf("%s block %d: Encode(Codes) changed the block", dt, k)
			}
		}
	}
}
