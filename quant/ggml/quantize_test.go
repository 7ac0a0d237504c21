package ggml_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// quantTypes are the block types Quantize supports (the registered
// types with a quantizer other than the plain floats).
var quantTypes = func() []tensor.DType {
	var ts []tensor.DType
	for _, dt := range ggml.Types() {
		if dt.Quantized() && ggml.QuantizeSupported(dt) {
			ts = append(ts, dt)
		}
	}
	return ts
}()

// maxRelRMSE bounds ‖x − deq(q(x))‖ / ‖x‖ on Gaussian rows, with or without
// (log-normal) importance; about 1.5× what the types achieve. A type not
// listed is held to the registry test's bound (maxRoundTripError).
var maxRelRMSE = map[tensor.DType]float64{
	tensor.Q8_0: 0.008, tensor.Q6_K: 0.03,
	tensor.Q5_0: 0.065, tensor.Q5_1: 0.06, tensor.Q5_K: 0.06,
	tensor.Q4_0: 0.13, tensor.Q4_1: 0.12, tensor.Q4_K: 0.12,
	tensor.IQ4_NL: 0.12, tensor.IQ4_XS: 0.12,
	tensor.Q3_K: 0.25, tensor.Q2_K: 0.45,
	// ternary codes on Gaussian rows (max|x| scale): 0.75–0.81 achieved
	tensor.TQ1_0: 1.1, tensor.TQ2_0: 1.1,
	// IQ3_XXS: 0.21–0.24 achieved, IQ3_S 0.15–0.17, IQ2_XXS 0.46–0.49
	tensor.IQ3_XXS: 0.33, tensor.IQ3_S: 0.24, tensor.IQ2_XXS: 0.7, tensor.IQ2_XS: 0.6, tensor.IQ2_S: 0.5,
	// IQ1_S: 0.56 achieved, IQ1_M 0.53 (0.58 without importance)
	tensor.IQ1_S: 0.75, tensor.IQ1_M: 0.75,
}

// latticeTypes code groups of 4 or 8 weights as points of a lattice
// codebook of odd (IQ3_*) or offset (IQ1_*) levels, without a zero level
// or with few points on the diagonal: a constant row or a lone spike has
// no close code (ggml's own quantizer gives errors of 20–30% there), so
// TestQuantizeEdgeValues holds them to finiteness on those rows.
var latticeTypes = []tensor.DType{
	tensor.IQ1_S, tensor.IQ1_M, tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ2_S,
	tensor.IQ3_XXS, tensor.IQ3_S,
}

// importances returns the importance settings to test dt with: none and
// qw, or only qw for a type that needs importance (Quantize refuses nil).
func importances(dt tensor.DType, qw []float32) [][]float32 {
	if d, _ := ggml.Lookup(dt); d.NeedsImportance {
		return [][]float32{qw}
	}
	return [][]float32{nil, qw}
}

func gaussian(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(scale * r.NormFloat64())
	}
	return x
}

func logNormal(r *rand.Rand, n int) []float32 {
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(math.Exp(2 * r.NormFloat64()))
	}
	return w
}

func roundTrip(t *testing.T, dt tensor.DType, x []float32, cols int, qw []float32) []float32 {
	t.Helper()
	b, err := ggml.QuantizeRows(dt, x, cols, qw)
	if err != nil {
		t.Fatalf("%s: %v", dt, err)
	}
	y := make([]float32, len(x))
	if err := ggml.Dequantize(dt, b, y); err != nil {
		t.Fatalf("%s: %v", dt, err)
	}
	return y
}

func TestQuantizeRoundTripError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const cols, rows = 512, 32
	x := gaussian(r, cols*rows, 0.02)
	qw := logNormal(r, cols)
	for _, dt := range quantTypes {
		for _, imp := range importances(dt, qw) {
			y := roundTrip(t, dt, x, cols, imp)
			var se, ss float64
			for i := range x {
				d := float64(x[i] - y[i])
				se += d * d
				ss += float64(x[i]) * float64(x[i])
			}
			rel := math.Sqrt(se / ss)
			bound, ok := maxRelRMSE[dt]
			if !ok {
				bound = maxRoundTripError(dt)
			}
			if rel > bound {
				t.Errorf("%s (importance %v): relative RMS error %.4f > %.4f", dt, imp != nil, rel, bound)
			}
		}
	}
}

// TestQuantizeQ8_0Bound checks the rounding bound of Q8_0: every element is
// within half a step of the stored scale (plus the scale's binary16
// rounding, at most 127 × 2^-11 of a step).
func TestQuantizeQ8_0Bound(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := gaussian(r, 32*1000, 1)
	b, err := ggml.QuantizeRows(tensor.Q8_0, x, 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(x))
	if err := ggml.Dequantize(tensor.Q8_0, b, y); err != nil {
		t.Fatal(err)
	}
	for blk := 0; blk < len(x)/32; blk++ {
		d := float64(tensor.F16ToF32(binary.LittleEndian.Uint16(b[34*blk:])))
		for j := 32 * blk; j < 32*blk+32; j++ {
			if e := math.Abs(float64(x[j] - y[j])); e > d*(0.5+127.0/2048) {
				t.Fatalf("block %d element %d: error %g > scale %g / 2", blk, j, e, d)
			}
		}
	}
}

// TestQuantizeEdgeValues quantizes zeros, constant rows, huge and tiny
// values and checks the results are finite and, where representable,
// close.
func TestQuantizeEdgeValues(t *testing.T) {
	const cols = 256
	r := rand.New(rand.NewPCG(5, 6))
	qw := logNormal(r, cols)
	cases := []struct {
		name string
		x    []float32
		// tol bounds max|x - y| / max|x| (0: exact; < 0: finite only);
		// rms instead bounds the relative RMS error by 2 × maxRelRMSE.
		tol float64
		rms bool
	}{
		{"zeros", make([]float32, cols), 0, false},
		{"constant", constant(cols, 0.75), 0.02, false},
		{"negative constant", constant(cols, -3), 0.02, false},
		{"huge", gaussian(r, cols, 1000), 0, true},
		{"tiny", gaussian(r, cols, 1e-6), -1, false},
		{"one spike", spike(cols, 5), 0.01, false},
	}
	for _, c := range cases {
		for _, dt := range quantTypes {
			for _, imp := range importances(dt, qw) {
				y := roundTrip(t, dt, c.x, cols, imp)
				var amax, emax, se, ss float64
				for i := range y {
					d := float64(c.x[i] - y[i])
					se += d * d
					ss += float64(c.x[i]) * float64(c.x[i])
					if math.IsNaN(float64(y[i])) || math.IsInf(float64(y[i]), 0) {
						t.Fatalf("%s %s (importance %v): element %d is %v", c.name, dt, imp != nil, i, y[i])
					}
					amax = max(amax, math.Abs(float64(c.x[i])))
					emax = max(emax, math.Abs(float64(c.x[i]-y[i])))
				}
				switch {
				case c.rms:
					if rel := math.Sqrt(se / ss); rel > 2*maxRelRMSE[dt] {
						t.Errorf("%s %s (importance %v): relative RMS error %.4f", c.name, dt, imp != nil, rel)
					}
				case c.tol == 0 && emax != 0:
					t.Errorf("%s %s (importance %v): max error %g, want exact", c.name, dt, imp != nil, emax)
				case c.tol > 0 && slices.Contains(latticeTypes, dt):
					// finite only (latticeTypes)
				case c.tol > 0 && emax > c.tol*amax:
					t.Errorf("%s %s (importance %v): max error %g > %g × %g", c.name, dt, imp != nil, emax, c.tol, amax)
				}
			}
		}
	}
}

func constant(n int, v float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = v
	}
	return x
}

func spike(n int, v float32) []float32 {
	x := make([]float32, n)
	x[n/3] = v
	return x
}

// TestQuantizeImportance checks that importance weights change the
// encoding (except for Q8_0 and the ternary types, which have no weighted
// form) and lower the
// importance-weighted error.
func TestQuantizeImportance(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const cols, rows = 512, 64
	x := gaussian(r, cols*rows, 1)
	qw := logNormal(r, cols)
	weighted := func(y []float32) float64 {
		var s float64
		for i := range x {
			d := float64(x[i] - y[i])
			s += float64(qw[i%cols]) * d * d
		}
		return s
	}
	for _, dt := range quantTypes {
		if d, _ := ggml.Lookup(dt); d.NeedsImportance {
			if _, err := ggml.QuantizeRows(dt, x, cols, nil); err == nil {
				t.Errorf("%s: quantized without the importance it needs", dt)
			}
			continue
		}
		plain, err := ggml.QuantizeRows(dt, x, cols, nil)
		if err != nil {
			t.Fatal(err)
		}
		imp, err := ggml.QuantizeRows(dt, x, cols, qw)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := ggml.Lookup(dt); d.QuantizeWeighted == nil {
			// Q8_0, TQ1_0, TQ2_0: ggml ignores the weights
			if !bytes.Equal(plain, imp) {
				t.Errorf("%s: importance changed the encoding", dt)
			}
			continue
		}
		if bytes.Equal(plain, imp) {
			t.Errorf("%s: importance did not change the encoding", dt)
			continue
		}
		e0 := weighted(roundTrip(t, dt, x, cols, nil))
		e1 := weighted(roundTrip(t, dt, x, cols, qw))
		if e1 >= 0.8*e0 {
			t.Errorf("%s: weighted error %g with importance, %g without", dt, e1, e0)
		}
	}
}

// TestQuantizeRowsIndependent checks that quantizing several rows at once
// equals quantizing each row alone.
func TestQuantizeRowsIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const cols, rows = 512, 3
	x := gaussian(r, cols*rows, 1)
	qw := logNormal(r, cols)
	for _, dt := range quantTypes {
		for _, imp := range importances(dt, qw) {
			all, err := ggml.QuantizeRows(dt, x, cols, imp)
			if err != nil {
				t.Fatal(err)
			}
			var cat []byte
			for i := 0; i < rows; i++ {
				b, err := ggml.QuantizeRows(dt, x[i*cols:(i+1)*cols], cols, imp)
				if err != nil {
					t.Fatal(err)
				}
				cat = append(cat, b...)
			}
			if !bytes.Equal(all, cat) {
				t.Errorf("%s (importance %v): rows quantized together differ from rows alone", dt, imp != nil)
			}
		}
	}
}

func TestQuantizeFloatTypes(t *testing.T) {
	x := []float32{0, 1, -2.5, 65504, 1e-8, 3.1415927}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
		b, err := ggml.QuantizeRows(dt, x, len(x), nil)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := ggml.Dequantize(dt, b, y); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			var want float32
			switch dt {
			case tensor.F32:
				want = x[i]
			case tensor.F16:
				want = tensor.F16ToF32(tensor.F32ToF16(x[i]))
			case tensor.BF16:
				want = tensor.BF16ToF32(tensor.F32ToBF16(x[i]))
			}
			if y[i] != want {
				t.Errorf("%s: element %d = %v, want %v", dt, i, y[i], want)
			}
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	x := make([]float32, 256)
	dst := make([]byte, 144)
	ok := make([]float32, 256)
	cases := []struct {
		name string
		dt   tensor.DType
		x    []float32
		dst  []byte
		qw   []float32
	}{
		{"unsupported type", tensor.IQ2_XXS, x, make([]byte, 66), nil},
		{"partial block", tensor.Q4_K, x[:100], dst, nil},
		{"short dst", tensor.Q4_K, x, dst[:100], nil},
		{"NaN", tensor.Q4_K, withValue(256, 7, float32(math.NaN())), dst, nil},
		{"Inf", tensor.Q8_0, withValue(256, 3, float32(math.Inf(-1))), make([]byte, 272), nil},
		{"negative importance", tensor.Q4_K, x, dst, withValue(256, 0, -1)},
		{"NaN importance", tensor.Q4_K, x, dst, withValue(256, 5, float32(math.NaN()))},
		{"importance not whole rows", tensor.Q4_K, x, dst, ok[:100]},
		{"importance not whole blocks", tensor.Q4_0, x, make([]byte, 144), ok[:48]},
	}
	for _, c := range cases {
		if err := ggml.Quantize(c.dt, c.x, c.dst, c.qw); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if _, err := ggml.QuantizeRows(tensor.Q4_K, x, 100, nil); err == nil {
		t.Errorf("QuantizeRows: rows of 100 accepted for Q4_K")
	}
	if _, err := ggml.QuantizeRows(tensor.Q4_K, x, 256, ok[:128]); err == nil {
		t.Errorf("QuantizeRows: importance of the wrong length accepted")
	}
}

func withValue(n, i int, v float32) []float32 {
	x := make([]float32, n)
	x[i] = v
	return x
}

func TestQuantizeDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := gaussian(r, 1024, 1)
	qw := logNormal(r, 512)
	for _, dt := range quantTypes {
		n, _ := dt.RowBytes(len(x))
		dst := make([]byte, n)
		for _, imp := range importances(dt, qw) {
			if a := testing.AllocsPerRun(5, func() {
				if err := ggml.Quantize(dt, x, dst, imp); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("%s (importance %v): %v allocations", dt, imp != nil, a)
			}
		}
	}
}

// FuzzQuantize feeds arbitrary float32 bit patterns (NaN and ±Inf
// included) and importance weights to every type: Quantize must not panic,
// must reject non-finite input, and must produce a block stream that
// dequantizes otherwise.
func FuzzQuantize(f *testing.F) {
	f.Add(uint8(0), false, make([]byte, 4*256))
	f.Add(uint8(7), true, bytes.Repeat([]byte{0, 0, 0x80, 0x7f}, 300))
	f.Add(uint8(11), true, bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 0xc8}, 200))
	f.Add(uint8(5), false, bytes.Repeat([]byte{0xff, 0xff, 0x7f, 0x7f}, 256))
	f.Fuzz(func(t *testing.T, typ uint8, useImp bool, data []byte) {
		dt := quantTypes[int(typ)%len(quantTypes)]
		bs := dt.BlockSize()
		n := len(data) / 4 / bs * bs
		if n == 0 {
			return
		}
		x := make([]float32, n)
		finite := true
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
			if math.IsNaN(float64(x[i])) || math.IsInf(float64(x[i]), 0) {
				finite = false
			}
		}
		var qw []float32
		if d, _ := ggml.Lookup(dt); d.NeedsImportance {
			useImp = true
		}
		if useImp {
			qw = make([]float32, bs)
			for i := range qw {
				qw[i] = float32(math.Abs(float64(x[i%n])))
				if math.IsNaN(float64(qw[i])) || math.IsInf(float64(qw[i]), 0) {
					finite = false
				}
			}
		}
		nb, _ := dt.RowBytes(n)
		dst := make([]byte, nb)
		err := ggml.Quantize(dt, x, dst, qw)
		if !finite {
			if err == nil {
				t.Fatalf("%s: non-finite input accepted", dt)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		if err := ggml.Dequantize(dt, dst, make([]float32, n)); err != nil {
			t.Fatal(err)
		}
	})
}

func benchmarkQuantize(b *testing.B, dt tensor.DType, withImportance bool) {
	r := rand.New(rand.NewPCG(13, 14))
	const cols, rows = 4096, 64
	x := gaussian(r, cols*rows, 0.02)
	var qw []float32
	if withImportance {
		qw = logNormal(r, cols)
	}
	n, _ := dt.RowBytes(len(x))
	dst := make([]byte, n)
	b.SetBytes(int64(4 * len(x)))
	b.ResetTimer()
	for b.Loop() {
		if err := ggml.Quantize(dt, x, dst, qw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkQuantizeQ4K(b *testing.B)           { benchmarkQuantize(b, tensor.Q4_K, false) }
func BenchmarkQuantizeQ4KImportance(b *testing.B) { benchmarkQuantize(b, tensor.Q4_K, true) }
func BenchmarkQuantizeQ6K(b *testing.B)           { benchmarkQuantize(b, tensor.Q6_K, false) }
func BenchmarkQuantizeQ6KImportance(b *testing.B) { benchmarkQuantize(b, tensor.Q6_K, true) }

// TestQuantizeNearFloatLimit quantizes rows whose squares overflow float32
// (the lattice searches' weights become Inf or NaN, where ggml aborts):
// every type must return without panicking.
func TestQuantizeNearFloatLimit(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	const cols = 512
	x := gaussian(r, cols, 1e37)
	qw := logNormal(r, cols)
	qw[3] = 0
	for _, dt := range quantTypes {
		for _, imp := range importances(dt, qw) {
			if _, err := ggml.QuantizeRows(dt, x, cols, imp); err != nil {
				t.Errorf("%s (importance %v): %v", dt, imp != nil, err)
			}
		}
	}
}
