package model

import (
	"math"
	"testing"
)

func TestArgmax(t *testing.T) {
	tests := []struct {
		in   []float32
		want int
	}{
		{[]float32{1, 3, 2}, 1},
		{[]float32{5, 5, 1}, 0},
		{[]float32{-1}, 0},
	}
	for _, tc := range tests {
		if got := Argmax(tc.in); got != tc.want {
			t.Errorf("Argmax(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestSamplerDistribution(t *testing.T) {
	logits := []float32{0, float32(math.Log(3)), -100, float32(math.Log(6))}
	tests := []struct {
		name string
		s    *Sampler
		want []float64
	}{
		{"greedy", NewSampler(0, 0, 1, 1), []float64{0, 0, 0, 1}},
		{"temp1", NewSampler(1, 0, 1, 1), []float64{0.1, 0.3, 0, 0.6}},
		{"topk2", NewSampler(1, 2, 1, 1), []float64{0, 1.0 / 3, 0, 2.0 / 3}},
		{"topp0.5", NewSampler(1, 0, 0.5, 1), []float64{0, 0, 0, 1}},
		{"topp0.8", NewSampler(1, 0, 0.8, 1), []float64{0, 1.0 / 3, 0, 2.0 / 3}},
	}
	const draws = 60000
	for _, tc := range tests {
		count := make([]float64, len(logits))
		for i := 0; i < draws; i++ {
			count[tc.s.Sample(logits)]++
		}
		for i, w := range tc.want {
			if got := count[i] / draws; math.Abs(got-w) > 0.01 {
				t.Errorf("%s: P(%d) = %.3f, want %.3f", tc.name, i, got, w)
			}
		}
	}
}
