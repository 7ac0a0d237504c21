package kmeans

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/gptq"
	"github.com/terse-llm/terse/tensor"
)

func TestPackRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for bits := 1; bits <= 16; bits++ {
		for _, n := range []int{1, 7, 64, 129} {
			codes := make([]uint16, n)
			for i := range codes {
				codes[i] = uint16(rng.IntN(1 << bits))
			}
			b := make([]byte, PackedBytes(n, bits))
			PackCodes(b, codes, bits)
			got := make([]uint16, n)
			if err := UnpackCodes(got, b, bits); err != nil {
				t.Fatal(err)
			}
			for i := range codes {
				if got[i] != codes[i] {
					t.Fatalf("bits %d n %d: code %d is %d, want %d", bits, n, i, got[i], codes[i])
				}
			}
		}
	}
}

// Data drawn from 2^b distinct (fp16-exact) values per row is recovered
// exactly, whatever the cluster sizes.
func TestClustersRecoveredExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, bits := range []int{2, 3, 4} {
		rows, cols := 8, 256
		w := make([]float32, rows*cols)
		for r := 0; r < rows; r++ {
			pts := make([]float32, 1<<bits)
			for i := range pts {
				pts[i] = float32(rng.IntN(2000)-1000) / 256
			}
			for j := 0; j < cols; j++ {
				// Skewed cluster sizes.
				i := min(len(pts)-1, int(math.Floor(math.Pow(rng.Float64(), 2)*float64(len(pts)))))
				w[r*cols+j] = pts[i]
			}
		}
		for _, gs := range []int{0, 128} {
			m, err := Fit(w, rows, cols, nil, Config{Bits: bits, GroupSize: gs})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := m.Dequantize()
			for i := range w {
				if got[i] != w[i] {
					t.Fatalf("bits %d group %d: element %d is %g, want %g", bits, gs, i, got[i], w[i])
				}
			}
			want := float64(bits) + 16*float64(int(1)<<bits)/float64(cols)
			if gs > 0 {
				want = float64(bits) + 16*float64(int(1)<<bits)/float64(gs)
			}
			if math.Abs(m.Bits()-want) > 1e-9 {
				t.Errorf("bits/weight %g, want %g", m.Bits(), want)
			}
		}
	}
}

func randn(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// Importance weighting lowers the importance-weighted error compared with
// the unweighted codebook, and k-means beats a uniform grid of the same
// size on Gaussian data (Lloyd–Max).
func TestWeightedLowersWeightedError(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	rows, cols := 16, 512
	w := randn(rng, rows*cols)
	imp := make([]float32, cols)
	for j := range imp {
		imp[j] = float32(math.Exp(3 * rng.NormFloat64()))
	}
	werr := func(m *Matrix) float64 {
		got, _ := m.Dequantize()
		var s float64
		for i, v := range got {
			d := float64(v - w[i])
			s += float64(imp[i%cols]) * d * d
		}
		return s
	}
	plain, _ := Fit(w, rows, cols, nil, Config{Bits: 3})
	weighted, _ := Fit(w, rows, cols, &quant.Stats{Importance: imp}, Config{Bits: 3})
	if a, b := werr(weighted), werr(plain); !(a < 0.9*b) {
		t.Errorf("weighted error %g, unweighted %g", a, b)
	}
	// Gaussian: k-means MSE vs a uniform min/max grid.
	var uni, km float64
	got, _ := plain.Dequantize()
	for r := 0; r < rows; r++ {
		lo, hi := w[r*cols], w[r*cols]
		for _, v := range w[r*cols : (r+1)*cols] {
			lo, hi = min(lo, v), max(hi, v)
		}
		s := (hi - lo) / 7
		for j, v := range w[r*cols : (r+1)*cols] {
			q := lo + s*float32(math.Round(float64((v-lo)/s)))
			uni += float64((q - v) * (q - v))
			km += float64((got[r*cols+j] - v) * (got[r*cols+j] - v))
		}
	}
	if !(km < 0.8*uni) {
		t.Errorf("k-means MSE %g, uniform %g", km, uni)
	}
}

func hessian(rng *rand.Rand, cols, n int) []float64 {
	// Correlated inputs: x = z·M with a random mixing M.
	mix := randn(rng, cols*cols)
	h := make([]float64, cols*cols)
	x := make([]float64, cols)
	for s := 0; s < n; s++ {
		z := randn(rng, cols)
		for j := range x {
			x[j] = 0
			for i := 0; i < cols; i += 8 {
				x[j] += float64(z[i]) * float64(mix[i*cols+j])
			}
			x[j] *= float64(1 + j%5)
		}
		for i := range x {
			for j := range x {
				h[i*cols+j] += x[i] * x[j]
			}
		}
	}
	return h
}

func proxy(w, q []float32, rows, cols int, h []float64) float64 {
	var tot float64
	e := make([]float64, cols)
	for r := 0; r < rows; r++ {
		for j := range e {
			e[j] = float64(w[r*cols+j] - q[r*cols+j])
		}
		for i := range e {
			for j := range e {
				tot += e[i] * h[i*cols+j] * e[j]
			}
		}
	}
	return tot
}

// GPTQ over the learned grid lowers the output error tr(ΔW H ΔWᵀ).
func TestGPTQLowersOutputError(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	rows, cols := 32, 128
	w := randn(rng, rows*cols)
	h := hessian(rng, cols, 400)
	st := &quant.Stats{Hessian: h, Samples: 400}
	plain, err := Fit(w, rows, cols, st, Config{Bits: 3, GroupSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Fit(w, rows, cols, st, Config{Bits: 3, GroupSize: 64, GPTQ: true, GPTQConfig: gptq.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := plain.Dequantize()
	b, _ := g.Dequantize()
	ea, eb := proxy(w, a, rows, cols, h), proxy(w, b, rows, cols, h)
	t.Logf("output error: diag-weighted k-means %.4g, with GPTQ %.4g", ea, eb)
	if !(eb < 0.9*ea) {
		t.Errorf("GPTQ output error %g not below k-means %g", eb, ea)
	}
}

func TestQuantizerAndDecoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	w := tensor.FromFloat32("x", []int{4, 96}, randn(rng, 4*96))
	var q quant.Quantizer = Config{Bits: 4, GroupSize: 32}
	out, err := q.Quantize(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.DType != tensor.Codebook || out.Decoder == nil || out.Decoder.Bits() <= 4 {
		t.Fatalf("got %v %v", out.DType, out.Decoder)
	}
	row := make([]float32, 96)
	if err := out.Decoder.DecodeRow(3, row); err != nil {
		t.Fatal(err)
	}
	if err := out.Decoder.DecodeRow(4, row); err == nil {
		t.Error("row out of range accepted")
	}
	if q.Name() != "kmeans-b4-g32" {
		t.Error(q.Name())
	}
}

func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	w := randn(rng, 8*200)
	a, _ := Fit(w, 8, 200, nil, Config{Bits: 4, GroupSize: 64})
	b, _ := Fit(w, 8, 200, nil, Config{Bits: 4, GroupSize: 64})
	if string(a.Codes) != string(b.Codes) || len(a.Codebooks) != len(b.Codebooks) {
		t.Fatal("two fits differ")
	}
	for i := range a.Codebooks {
		if a.Codebooks[i] != b.Codebooks[i] {
			t.Fatal("two fits differ")
		}
	}
}
