package codec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// stepData is n×width floats, channel c of spread 2^(−c/2) around a
// mean of c−3, with an outlier.
func stepData(seed uint64, n, width int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n*width)
	for t := 0; t < n; t++ {
		for c := 0; c < width; c++ {
			x[t*width+c] = float32(float64(c-3) + math.Exp2(-float64(c)/2)*rng.NormFloat64())
		}
	}
	if len(x) > 0 {
		x[len(x)/2] += 50
	}
	return x
}

func TestStepPlaneRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		n, width int
		step     float32
	}{{64, 8, 0.01}, {64, 8, 0.3}, {64, 8, 4}, {1, 3, 0.5}, {0, 4, 1}, {17, 1, 1e-3}, {64, 64, 0.05}} {
		x := stepData(uint64(tc.n*tc.width), tc.n, tc.width)
		var pc PlaneCoder
		p, err := pc.AppendStepPlane([]byte{9}, x, tc.n, tc.width, tc.width, tc.step)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if p[0] != 9 || p[1] != StepVersion {
			t.Fatalf("%+v: plane starts % x, want 09 %02x", tc, p[:2], StepVersion)
		}
		// Decode with a stride wider than the plane; the gaps stay.
		checkDecoded(t, fmt.Sprintf("%+v", tc), x, tc.n, tc.width, tc.step, func(dst []float32, stride int) error {
			return DecodeStepPlane(p[1:], tc.n, tc.width, tc.step, dst, stride)
		})
	}
}

// checkDecoded decodes an n×width plane with decode into a buffer whose
// rows are two floats wider than the plane and checks it: every value
// within half a bin step of x (up to float32 rounding), the gaps between
// rows untouched. name prefixes the failures.
func checkDecoded(t *testing.T, name string, x []float32, n, width int, step float32, decode func(dst []float32, stride int) error) {
	t.Helper()
	stride := width + 2
	got := make([]float32, max(0, (n-1)*stride+width))
	for i := range got {
		got[i] = -7
	}
	if err := decode(got, stride); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for r := 0; r < n; r++ {
		for c := 0; c < stride && r*stride+c < len(got); c++ {
			g := got[r*stride+c]
			if c >= width {
				if g != -7 {
					t.Fatalf("%s: gap (%d, %d) written: %g", name, r, c, g)
				}
				continue
			}
			want := x[r*width+c]
			if d := math.Abs(float64(g - want)); d > float64(step)/2*(1+1e-4)+1e-5*math.Abs(float64(want)) {
				t.Fatalf("%s: (%d, %d): %g, want %g ± %g", name, r, c, g, want, step/2)
			}
		}
	}
}

// A plane's bits fall with its bin, and channels of spread far below the
// bin cost almost nothing.
func TestStepPlaneRate(t *testing.T) {
	const n, w = 64, 32
	x := stepData(3, n, w)
	var pc PlaneCoder
	last := math.MaxInt
	for _, step := range []float32{0.001, 0.01, 0.1, 1} {
		p, err := pc.AppendStepPlane(nil, x, n, w, w, step)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) >= last {
			t.Fatalf("step %g: %d bytes, not fewer than %d", step, len(p), last)
		}
		last = len(p)
	}
	// At step 64 every channel codes to zeros but the outlier: the means
	// and model codes (2 bytes a channel) and a few bytes of stream.
	p, err := pc.AppendStepPlane(nil, x, n, w, w, 64)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) > 2*w+16 {
		t.Fatalf("step 64: %d bytes, want ≤ %d", len(p), 2*w+16)
	}
}

func TestStepPlaneErrors(t *testing.T) {
	x := stepData(1, 8, 4)
	var pc PlaneCoder
	for _, tc := range []struct {
		name    string
		x       []float32
		n, w, s int
		step    float32
	}{
		{"short", x[:10], 8, 4, 4, 1},
		{"stride", x, 8, 4, 3, 1},
		{"step 0", x, 8, 4, 4, 0},
		{"step NaN", x, 8, 4, 4, float32(math.NaN())},
		{"step huge", x, 8, 4, 4, 0x1p41},
		{"far", []float32{0, 1e9}, 2, 1, 1, 1e-3},
		{"inf", []float32{0, float32(math.Inf(1))}, 2, 1, 1, 1},
	} {
		if _, err := pc.AppendStepPlane(nil, tc.x, tc.n, tc.w, tc.s, tc.step); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	p, err := pc.AppendStepPlane(nil, x, 8, 4, 4, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 32)
	for i := 0; i < len(p); i++ {
		if err := DecodeStepPlane(p[:i], 8, 4, 0.1, dst, 4); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", i, len(p))
		}
	}
	bad := append([]byte{StepVersion + 1}, p[1:]...)
	if err := DecodeStepPlane(bad, 8, 4, 0.1, dst, 4); err == nil || IsCorrupt(err) {
		t.Errorf("version %d: %v, want a version error", bad[0], err)
	}
	if err := DecodeStepPlane(append(p, 0), 8, 4, 0.1, dst, 4); !IsCorrupt(err) {
		t.Errorf("a byte more: %v, want corrupt", err)
	}
	if err := DecodeStepPlane(p, 8, 4, 0, dst, 4); err == nil {
		t.Errorf("step 0: no error")
	}
}

func FuzzDecodeStepPlane(f *testing.F) {
	var pc PlaneCoder
	for i, step := range []float32{0.01, 1, 100} {
		p, err := pc.AppendStepPlane(nil, stepData(uint64(i), 16, 4), 16, 4, 4, step)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p, uint8(16), uint8(4), step)
	}
	f.Fuzz(func(t *testing.T, data []byte, n, w uint8, step float32) {
		dst := make([]float32, max(1, int(n))*max(1, int(w)))
		err := DecodeStepPlane(data, int(n), int(w), step, dst, max(1, int(w)))
		if err == nil && !(step >= minStep && step <= maxStep) {
			t.Fatalf("step %g accepted", step)
		}
	})
}
