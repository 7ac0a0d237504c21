package ggml_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// gridTypes are the block types BlockGrid supports: every registered
// block type with a grid (registry_test.go checks today's are there).
var gridTypes = func() []tensor.DType {
	var ts []tensor.DType
	for _, dt := range ggml.Types() {
		if ggml.GridSupported(dt) {
			ts = append(ts, dt)
		}
	}
	return ts
}()

// gridRows returns rows of 512 values quantized as dt, with and without
// importance: Gaussian rows at several scales, rows with outliers, a row
// with an all-zero stretch and a row of one sign.
func gridRows(t *testing.T, dt tensor.DType, seed uint64) [][]byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	const cols = 512
	var out [][]byte
	for k := 0; k < 8; k++ {
		x := make([]float32, cols)
		scale := math.Pow(10, float64(k%4)-3)
		for i := range x {
			x[i] = float32(scale * r.NormFloat64())
			switch {
			case k == 4 && i%37 == 0:
				x[i] *= 20
			case k == 5 && i >= 256:
				x[i] = 0
			case k == 6:
				x[i] = float32(math.Abs(float64(x[i])))
			case k == 7:
				x[i] = -float32(math.Abs(float64(x[i]))) - float32(scale)
			}
		}
		for _, useImp := range []bool{false, true} {
			var imp []float32
			if useImp {
				imp = make([]float32, cols)
				for i := range imp {
					imp[i] = float32(math.Exp(2 * r.NormFloat64()))
				}
			}
			b, err := ggml.QuantizeRows(dt, x, cols, imp)
			if err != nil {
				t.Fatalf("%s: %v", dt, err)
			}
			out = append(out, b)
		}
	}
	return out
}

// forBlocks calls fn for every block of every test row of dt.
func forBlocks(t *testing.T, dt tensor.DType, fn func(blk []byte)) {
	for _, row := range gridRows(t, dt, uint64(dt)) {
		for o := 0; o < len(row); o += dt.BlockBytes() {
			fn(row[o : o+dt.BlockBytes()])
		}
	}
}

func dequantBlock(t *testing.T, dt tensor.DType, blk []byte) []float32 {
	t.Helper()
	y := make([]float32, dt.BlockSize())
	if err := ggml.Dequantize(dt, blk, y); err != nil {
		t.Fatal(err)
	}
	return y
}

// TestGridRoundTrip: decoding a quantized block's codes and encoding them
// into a block with scrambled code bits gives back the original bytes; each
// code's Value is the dequantized element, bit for bit, and Nearest of the
// dequantized element returns it.
func TestGridRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, dt := range gridTypes {
		var g ggml.BlockGrid
		codes := make([]int, dt.BlockSize())
		forBlocks(t, dt, func(blk []byte) {
			if err := g.Reset(dt, blk); err != nil {
				t.Fatal(err)
			}
			g.Codes(blk, codes)
			y := dequantBlock(t, dt, blk)
			for i, c := range codes {
				if c < 0 || c >= g.Levels() {
					t.Fatalf("%s: element %d code %d out of range", dt, i, c)
				}
				if v := g.Value(i, c); math.Float32bits(v) != math.Float32bits(y[i]) {
					t.Fatalf("%s: element %d code %d: Value %g, dequantized %g", dt, i, c, v, y[i])
				}
				if _, v := g.Nearest(i, y[i]); v != y[i] {
					t.Fatalf("%s: element %d: Nearest(%g) = %g", dt, i, y[i], v)
				}
			}
			// Scramble the code bits with random codes, then write the
			// decoded codes back.
			scr := bytes.Clone(blk)
			rnd := make([]int, len(codes))
			for i := range rnd {
				rnd[i] = r.IntN(g.Levels())
			}
			g.Encode(rnd, scr)
			g.Encode(codes, scr)
			if !bytes.Equal(scr, blk) {
				t.Fatalf("%s: re-encoding changed the block\n got %x\nwant %x", dt, scr, blk)
			}
			// Codes derived through Nearest give the same values.
			for i := range rnd {
				rnd[i], _ = g.Nearest(i, y[i])
			}
			g.Encode(rnd, scr)
			if z := dequantBlock(t, dt, scr); !equalBits(z, y) {
				t.Fatalf("%s: codes from Nearest dequantize differently", dt)
			}
		})
	}
}

func equalBits(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGridValueMatchesDequantize writes random codes and checks that the
// block dequantizes to Value of each, bit for bit, that Codes reads them
// back and that the non-code bytes are untouched.
func TestGridValueMatchesDequantize(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, dt := range gridTypes {
		var g ggml.BlockGrid
		codes := make([]int, dt.BlockSize())
		back := make([]int, dt.BlockSize())
		forBlocks(t, dt, func(blk []byte) {
			if err := g.Reset(dt, blk); err != nil {
				t.Fatal(err)
			}
			for rep := 0; rep < 3; rep++ {
				for i := range codes {
					codes[i] = r.IntN(g.Levels())
				}
				b := bytes.Clone(blk)
				g.Encode(codes, b)
				var g2 ggml.BlockGrid
				if err := g2.Reset(dt, b); err != nil {
					t.Fatal(err)
				}
				if g2 != g {
					t.Fatalf("%s: Encode changed the block's scales", dt)
				}
				y := dequantBlock(t, dt, b)
				for i, c := range codes {
					if v := g.Value(i, c); math.Float32bits(v) != math.Float32bits(y[i]) {
						t.Fatalf("%s: element %d code %d: Value %g (%08x), dequantized %g (%08x)",
							dt, i, c, v, math.Float32bits(v), y[i], math.Float32bits(y[i]))
					}
				}
				g.Codes(b, back)
				for i := range codes {
					if back[i] != codes[i] {
						t.Fatalf("%s: element %d: wrote code %d, read %d", dt, i, codes[i], back[i])
					}
				}
			}
		})
	}
}

// TestGridNearestBruteForce compares Nearest with a search over every code,
// for points inside and outside each element's range, grid points and
// midpoints between neighbouring values.
func TestGridNearestBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, dt := range gridTypes {
		var g ggml.BlockGrid
		nb := 0
		forBlocks(t, dt, func(blk []byte) {
			nb++
			if nb%3 != 0 { // a third of the blocks keeps the test quick
				return
			}
			if err := g.Reset(dt, blk); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < g.Len(); i++ {
				lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
				for c := 0; c < g.Levels(); c++ {
					v := g.Value(i, c)
					lo, hi = min(lo, v), max(hi, v)
				}
				span := hi - lo
				if span == 0 {
					span = 1e-3
				}
				probe := func(x float32) {
					c, v := g.Nearest(i, x)
					if v != g.Value(i, c) {
						t.Fatalf("%s: Nearest returned value %g for code %d, Value %g", dt, v, c, g.Value(i, c))
					}
					best := math.Inf(1)
					for c := 0; c < g.Levels(); c++ {
						best = min(best, math.Abs(float64(x)-float64(g.Value(i, c))))
					}
					if d := math.Abs(float64(x) - float64(v)); d != best {
						t.Fatalf("%s: element %d: Nearest(%g) = %g at distance %g, best %g", dt, i, x, v, d, best)
					}
				}
				for k := 0; k < 4; k++ {
					probe(lo + float32(r.Float64()*1.4-0.2)*span)
				}
				c := r.IntN(g.Levels())
				probe(g.Value(i, c))
				if c+1 < g.Levels() {
					a, b := g.Value(i, c), g.Value(i, c+1)
					probe(float32((float64(a) + float64(b)) / 2))
				}
			}
		})
	}
}

func TestGridErrors(t *testing.T) {
	if _, err := ggml.NewBlockGrid(tensor.F16, make([]byte, 2)); err == nil {
		t.Error("F16 accepted")
	}
	if _, err := ggml.NewBlockGrid(tensor.Q4_K, make([]byte, 10)); err == nil {
		t.Error("short Q4_K block accepted")
	}
	g, err := ggml.NewBlockGrid(tensor.Q4_K, make([]byte, tensor.Q4_K.BlockBytes()))
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 256 || g.Levels() != 16 || g.DType() != tensor.Q4_K {
		t.Errorf("Q4_K grid: Len %d Levels %d DType %s", g.Len(), g.Levels(), g.DType())
	}
}
