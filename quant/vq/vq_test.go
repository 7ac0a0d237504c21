package vq

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/tensor"
)

func randn(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// Rows built from at most K distinct (fp16-exact) sub-vectors are
// reproduced exactly by VQ with K entries, by PQ with K per segment and by
// RVQ.
func TestStructuredDataReproduced(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const d, rows, cols = 4, 64, 128
	atoms := make([]float32, 16*d)
	for i := range atoms {
		atoms[i] = float32(rng.IntN(512)-256) / 64
	}
	w := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		for p := 0; p < cols/d; p++ {
			copy(w[r*cols+p*d:], atoms[rng.IntN(16)*d:][:d])
		}
	}
	for _, cfg := range []Config{
		{Dim: d, CodeBits: 4, NoScale: true},
		{Dim: d, CodeBits: 4, Segments: 4, NoScale: true},
		{Dim: d, CodeBits: 4, Stages: 2, NoScale: true},
		{Dim: d, CodeBits: 4, RowGroup: 16, NoScale: true},
	} {
		m, err := Fit(w, rows, cols, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := m.Dequantize()
		for i := range w {
			if got[i] != w[i] {
				t.Fatalf("%s: element %d is %g, want %g", cfg.Name(), i, got[i], w[i])
			}
		}
	}
}

// Low-rank data (rank 1 per sub-vector: each sub-vector is a multiple of
// one direction) is reproduced closely with enough entries.
func TestLowRankData(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const d, rows, cols = 2, 64, 64
	dir := []float32{0.6, 0.8}
	w := make([]float32, rows*cols)
	for i := 0; i < rows*cols/d; i++ {
		a := float32(rng.IntN(64)) / 16
		w[i*d], w[i*d+1] = a*dir[0], a*dir[1]
	}
	m, err := Fit(w, rows, cols, nil, Config{Dim: d, CodeBits: 6, NoScale: true})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := m.Dequantize()
	var e, n float64
	for i := range w {
		e += float64((got[i] - w[i]) * (got[i] - w[i]))
		n += float64(w[i] * w[i])
	}
	if e/n > 1e-5 {
		t.Errorf("relative error %g", e/n)
	}
}

func TestBitsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const rows, cols = 32, 96
	w := randn(rng, rows*cols)
	m, err := Fit(w, rows, cols, nil, Config{Dim: 4, CodeBits: 6, Stages: 2, Segments: 2, Iters: 3})
	if err != nil {
		t.Fatal(err)
	}
	codeBits := float64(rows * ((cols/4*2*6 + 7) / 8) * 8)
	books := float64(2*2*64*4) * 16
	want := (codeBits + books + 16*rows) / (rows * cols)
	if math.Abs(m.Bits()-want) > 1e-12 {
		t.Errorf("bits/weight %g, want %g", m.Bits(), want)
	}
	if m.Method() != "rvq" {
		t.Error(m.Method())
	}
}

func hessian(rng *rand.Rand, cols, n int) []float64 {
	mix := randn(rng, cols*cols)
	h := make([]float64, cols*cols)
	x := make([]float64, cols)
	for s := 0; s < n; s++ {
		z := randn(rng, cols)
		for j := range x {
			x[j] = 0
			for i := 0; i < cols; i += 4 {
				x[j] += float64(z[i]) * float64(mix[i*cols+j])
			}
			x[j] *= float64(1 + j%7)
		}
		for i := range x {
			for j := range x {
				h[i*cols+j] += x[i] * x[j]
			}
		}
	}
	return h
}

// H-aware refinement (codebook least squares and code re-assignment under
// the full H) lowers tr(ΔW H ΔWᵀ) compared with diagonal-weighted k-means,
// for VQ, RVQ and PQ, with both the full and the block-diagonal codebook
// update.
func TestRefinementLowersOutputError(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const rows, cols = 64, 64
	w := randn(rng, rows*cols)
	h := hessian(rng, cols, 300)
	st := &quant.Stats{Hessian: h, Samples: 300}
	for _, cfg := range []Config{
		{Dim: 4, CodeBits: 6},
		{Dim: 2, CodeBits: 4, Stages: 2},
		{Dim: 4, CodeBits: 5, Segments: 2},
		{Dim: 8, CodeBits: 8}, // K·d = 2048: block-diagonal codebook update
	} {
		plain, err := Fit(w, rows, cols, st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Refine = 3
		ref, err := Fit(w, rows, cols, st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := plain.Dequantize()
		b, _ := ref.Dequantize()
		ea, eb := ProxyLoss(w, a, rows, cols, h), ProxyLoss(w, b, rows, cols, h)
		t.Logf("%s: output error %.4g → %.4g (%.1f%%), %.3f bits/weight", cfg.Name(), ea, eb, 100*(eb-ea)/ea, ref.Bits())
		if !(eb < 0.9*ea) {
			t.Errorf("%s: refined output error %g not below %g", cfg.Name(), eb, ea)
		}
	}
}

// Importance weighting lowers the weighted error.
func TestWeightedKMeans(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const rows, cols = 64, 64
	w := randn(rng, rows*cols)
	imp := make([]float32, cols)
	for j := range imp {
		imp[j] = float32(math.Exp(2 * rng.NormFloat64()))
	}
	werr := func(m *Matrix) float64 {
		got, _ := m.Dequantize()
		var s float64
		for i, v := range got {
			s += float64(imp[i%cols]) * float64((v-w[i])*(v-w[i]))
		}
		return s
	}
	cfg := Config{Dim: 2, CodeBits: 5}
	a, _ := Fit(w, rows, cols, nil, cfg)
	b, _ := Fit(w, rows, cols, &quant.Stats{Importance: imp}, cfg)
	if ea, eb := werr(a), werr(b); !(eb < 0.9*ea) {
		t.Errorf("weighted %g, unweighted %g", eb, ea)
	}
}

func TestQuantizerDecoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	w := tensor.FromFloat32("x", []int{8, 32}, randn(rng, 8*32))
	var q quant.Quantizer = Config{Dim: 4, CodeBits: 3}
	out, err := q.Quantize(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.DType != tensor.Codebook || out.Decoder == nil {
		t.Fatal(out.DType)
	}
	m := out.Decoder.(*Matrix)
	m2 := *m
	m2.cb = nil
	m2.Codebooks = append([]uint16(nil), m.Codebooks...)
	m2.Codebooks[0] = 0x7c00 // +Inf
	if err := m2.Check(); err == nil {
		t.Error("infinite codebook entry accepted")
	}
	if _, err := Fit(randn(rng, 8*30), 8, 30, nil, Config{Dim: 4, CodeBits: 3}); err == nil {
		t.Error("30 columns in sub-vectors of 4 accepted")
	}
}
