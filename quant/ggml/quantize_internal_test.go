package ggml

import (
	"math"
	"testing"
)

func TestNearestInt(t *testing.T) {
	cases := []struct {
		in   float32
		want int32
	}{
		{0, 0}, {0.4999, 0}, {0.5, 0}, {1.5, 2}, {2.5, 2}, {-0.5, 0}, {-1.5, -2},
		{-2.5, -2}, {3.7, 4}, {-3.7, -4}, {4194303, 4194303}, {-4194303, -4194303},
	}
	for _, c := range cases {
		if got := nearestInt(c.in); got != c.want {
			t.Errorf("nearestInt(%v) = %d, want %d", c.in, got, c.want)
		}
	}
	// NaN and huge values must not panic; ggml's bit trick gives 0 for NaN.
	if got := nearestInt(float32(math.NaN())); got != 0 {
		t.Errorf("nearestInt(NaN) = %d, want 0", got)
	}
	_ = nearestInt(float32(math.Inf(1)))
	_ = nearestInt(1e30)
}

func TestTruncInt32(t *testing.T) {
	cases := []struct {
		in   float32
		want int32
	}{
		{8.99, 8}, {-8.99, -8}, {0.5, 0}, {2147483520, 2147483520},
		{2147483648, math.MinInt32}, {float32(math.NaN()), math.MinInt32},
		{float32(math.Inf(-1)), math.MinInt32}, {-2147483648, math.MinInt32},
	}
	for _, c := range cases {
		if got := truncInt32(c.in); got != c.want {
			t.Errorf("truncInt32(%v) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestBestIndexInt8 compares the binary search with a scan for the nearest
// table entry (ties to the upper entry).
func TestBestIndexInt8(t *testing.T) {
	for x := float32(-140); x <= 130; x += 0.25 {
		best := 0
		for i := 1; i < len(iq4nlValues); i++ {
			if math.Abs(float64(x)-float64(iq4nlValues[i])) <= math.Abs(float64(x)-float64(iq4nlValues[best])) {
				best = i
			}
		}
		if got := bestIndexInt8(iq4nlValues[:], x); got != best {
			t.Errorf("bestIndexInt8(%v) = %d, want %d", x, got, best)
		}
	}
}
