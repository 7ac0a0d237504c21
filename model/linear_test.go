package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.Float64()*2 - 1)
	}
	return v
}

// refMatMul is y = W·x in float64 for row-major W (rows×cols).
func refMatMul(w []float32, rows, cols int, x []float32, n int) []float64 {
	out := make([]float64, n*rows)
	for t := 0; t < n; t++ {
		for r := 0; r < rows; r++ {
			var s float64
			for c := 0; c < cols; c++ {
				s += float64(w[r*cols+c]) * float64(x[t*cols+c])
			}
			out[t*rows+r] = s
		}
	}
	return out
}

func TestLinearsMatchFloat64Reference(t *testing.T) {
	const rows, cols, rank = 19, 37, 3
	rng := rand.New(rand.NewPCG(5, 6))
	w := randVec(rng, rows*cols)
	for i := range w { // a pruned matrix: about 60% zeros
		if rng.Float64() < 0.6 {
			w[i] = 0
		}
	}
	bias := randVec(rng, rows)
	a, b := randVec(rng, rank*cols), randVec(rng, rows*rank)
	dense := NewDense(tensor.FromFloat32("w", []int{rows, cols}, w))
	sparse, err := NewSparse("w", rows, cols, w)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := NewLowRank(dense, rank, a, b)
	if err != nil {
		t.Fatal(err)
	}
	biased, err := NewBiased(sparse, bias)
	if err != nil {
		t.Fatal(err)
	}
	lrBiased, err := NewLowRank(biased, rank, a, b)
	if err != nil {
		t.Fatal(err)
	}
	// The adapter's effective matrix W + B·A, in float64.
	full := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			s := float64(w[r*cols+c])
			for i := 0; i < rank; i++ {
				s += float64(b[r*rank+i]) * float64(a[i*cols+c])
			}
			full[r*cols+c] = float32(s)
		}
	}
	tests := []struct {
		name     string
		l        Linear
		w        []float32
		withBias bool
	}{
		{"dense", dense, w, false},
		{"sparse", sparse, w, false},
		{"bias", biased, w, true},
		{"lowrank", lr, full, false},
		{"lowrank+bias", lrBiased, full, true},
	}
	for _, tc := range tests {
		for _, n := range []int{1, 5} {
			x := randVec(rng, n*cols)
			want := refMatMul(tc.w, rows, cols, x, n)
			got := make([]float32, n*rows)
			if err := tc.l.MatMul(got, x, n); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			for i, g := range got {
				wv := want[i]
				if tc.withBias {
					wv += float64(bias[i%rows])
				}
				// W+B·A is rounded to float32 above: allow for it.
				if d := math.Abs(float64(g) - wv); d > 1e-4*(1+math.Abs(wv)) {
					t.Fatalf("%s n=%d: out[%d] = %v, reference %v", tc.name, n, i, g, wv)
				}
			}
		}
		if tc.l.Rows() != rows || tc.l.Cols() != cols || tc.l.Name() != "w" || tc.l.Bytes() <= 0 {
			t.Errorf("%s: %d×%d %q %d bytes", tc.name, tc.l.Rows(), tc.l.Cols(), tc.l.Name(), tc.l.Bytes())
		}
	}
	if got, ok := DenseTensor(&Biased{Base: dense, Bias: bias}); !ok || got != dense.W {
		t.Error("DenseTensor does not see through a bias")
	}
	if _, ok := DenseTensor(lr); ok {
		t.Error("DenseTensor of a low-rank projection")
	}
}

func TestLinearShapeErrors(t *testing.T) {
	d := NewDense(tensor.FromFloat32("w", []int{2, 3}, make([]float32, 6)))
	if _, err := NewBiased(d, make([]float32, 3)); err == nil {
		t.Error("bias of the wrong length: no error")
	}
	if _, err := NewLowRank(d, 2, make([]float32, 5), make([]float32, 4)); err == nil {
		t.Error("adapter of the wrong shape: no error")
	}
	if _, err := NewSparse("s", 2, 3, make([]float32, 5)); err == nil {
		t.Error("sparse of the wrong size: no error")
	}
	s, _ := NewSparse("s", 2, 3, make([]float32, 6))
	if err := s.MatMul(make([]float32, 2), make([]float32, 3), 2); err == nil {
		t.Error("short buffers: no error")
	}
}

// A model whose projections are wrapped in other Linear kinds computes the
// same logits (adapters of zeros, a sparse copy of a dense matrix).
func TestForwardThroughOtherLinears(t *testing.T) {
	cfg := Config{Arch: "llama", Dim: 16, NLayers: 2, NHeads: 2, NKVHeads: 1, HeadDim: 8, FFNDim: 24,
		VocabSize: 20, NormEps: 1e-5, RopeTheta: 10000}
	m, w := randomModel(t, cfg, tensor.F32, 4)
	tokens := []int{1, 4, 7, 2, 19}
	want := refForward(cfg, w, tokens)
	for li := range m.Weights.Layers {
		l := &m.Weights.Layers[li]
		dt, _ := DenseTensor(l.Gate)
		sp, err := NewSparse(dt.Name, dt.Rows(), dt.Cols(), float32s(w[dt.Name]))
		if err != nil {
			t.Fatal(err)
		}
		l.Gate = sp
		if l.Wq, err = NewLowRank(l.Wq, 2, make([]float32, 2*cfg.Dim), make([]float32, 2*l.Wq.Rows())); err != nil {
			t.Fatal(err)
		}
	}
	st := m.NewState(8, 8)
	got := make([]float32, len(tokens)*cfg.VocabSize)
	if err := st.Forward(tokens, got, true); err != nil {
		t.Fatal(err)
	}
	for r := range tokens {
		for j := 0; j < cfg.VocabSize; j++ {
			g, wv := float64(got[r*cfg.VocabSize+j]), want[r][j]
			if math.Abs(g-wv) > 2e-4*(1+math.Abs(wv)) {
				t.Fatalf("position %d logit %d = %v, reference %v", r, j, g, wv)
			}
		}
	}
}

func float32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
