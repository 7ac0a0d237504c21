package tensor

import (
	"math"
	"testing"
)

// f16Ref converts by exhaustive search over all finite halves: slow and obviously right.
func TestF16RoundTripAll(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			if g := F32ToF16(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#x -> %#x", h, g)
			}
			continue
		}
		if g := F32ToF16(f); g != uint16(h) {
			t.Fatalf("%#x -> %v -> %#x", h, f, g)
		}
	}
}

func TestF32ToF16Rounding(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65520, 0x7c00},                  // rounds up to Inf
		{1 + 1.0/2048, 0x3c00},           // tie, even stays
		{1 + 3.0/2048, 0x3c02},           // tie, odd rounds up
		{float32(math.Ldexp(1, -24)), 1}, // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0}, // tie to even zero
		{float32(math.Ldexp(1.5, -25)), 1},
		{float32(math.Inf(-1)), 0xfc00},
	}
	for _, tc := range tests {
		if got := F32ToF16(tc.in); got != tc.want {
			t.Errorf("F32ToF16(%v) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

func TestBF16(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3f80},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie to even
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie to even, up
		{math.Float32frombits(0x3f808001), 0x3f81},
	}
	for _, tc := range tests {
		if got := F32ToBF16(tc.in); got != tc.want {
			t.Errorf("F32ToBF16(%v) = %#x, want %#x", tc.in, got, tc.want)
		}
		if back := BF16ToF32(tc.want); F32ToBF16(back) != tc.want {
			t.Errorf("round trip %#x", tc.want)
		}
	}
	if !math.IsNaN(float64(BF16ToF32(F32ToBF16(float32(math.NaN()))))) {
		t.Error("NaN lost")
	}
}

func TestRowBytes(t *testing.T) {
	tests := []struct {
		dt   DType
		n    int
		want int
		err  bool
	}{
		{F32, 10, 40, false},
		{Q4_K, 512, 288, false},
		{Q8_0, 64, 68, false},
		{Q4_0, 33, 0, true},
		{DType(999), 1, 0, true},
	}
	for _, tc := range tests {
		got, err := tc.dt.RowBytes(tc.n)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%v.RowBytes(%d) = %d, %v", tc.dt, tc.n, got, err)
		}
	}
}
