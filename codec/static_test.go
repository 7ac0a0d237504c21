package codec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gaussData is n×width floats, channel c a centred Gaussian of standard
// deviation sd(c), with sd(c) = 2^(−c/4).
func gaussData(seed uint64, n, width int) ([]float32, []float64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	sd := make([]float64, width)
	for c := range sd {
		sd[c] = math.Exp2(-float64(c) / 4)
	}
	x := make([]float32, n*width)
	for t := 0; t < n; t++ {
		for c := 0; c < width; c++ {
			x[t*width+c] = float32(sd[c] * rng.NormFloat64())
		}
	}
	return x, sd
}

func gaussCodes(sd []float64, step float32) []byte {
	codes := make([]byte, len(sd))
	for c, s := range sd {
		codes[c] = ModelCode(s/float64(step), true)
	}
	return codes
}

func TestModelCode(t *testing.T) {
	for _, tc := range []struct {
		spread   float64
		gaussian bool
		want     byte
	}{
		{1, false, spreadBias}, {1, true, 128 | spreadBias}, {2, false, spreadBias + 8},
		{0.5, true, 128 | (spreadBias - 8)}, {0, false, 0}, {1e-30, true, 128}, {1e30, false, 127},
	} {
		if got := ModelCode(tc.spread, tc.gaussian); got != tc.want {
			t.Errorf("ModelCode(%g, %v) = %d, want %d", tc.spread, tc.gaussian, got, tc.want)
		}
	}
	// The code's spread is within a sixteenth of an octave of the asked.
	for _, s := range []float64{0.1, 0.37, 1.9, 25} {
		m := int(ModelCode(s, false))
		if r := math.Abs(math.Log2(spreadOf(m) / s)); r > 1.0/16+1e-12 {
			t.Errorf("spread %g: code %d has spread %g", s, m, spreadOf(m))
		}
	}
}

func TestStaticPlaneRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		n, width int
		step     float32
	}{{8, 64, 0.05}, {8, 64, 1}, {1, 3, 0.5}, {0, 4, 1}, {17, 1, 1e-3}, {64, 8, 0.3}} {
		x, sd := gaussData(uint64(tc.n*tc.width), tc.n, tc.width)
		if len(x) > 0 {
			x[len(x)/2] += 50 // an outlier far out in its model's tail
		}
		var pc PlaneCoder
		codes := gaussCodes(sd, tc.step)
		p, err := pc.AppendStaticPlane([]byte{9}, x, tc.n, tc.width, tc.width, tc.step, codes)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if p[0] != 9 || p[1] != StaticVersion {
			t.Fatalf("%+v: plane starts % x, want 09 %02x", tc, p[:2], StaticVersion)
		}
		checkDecoded(t, fmt.Sprintf("%+v", tc), x, tc.n, tc.width, tc.step, func(dst []float32, stride int) error {
			return DecodeStaticPlane(p[1:], tc.n, tc.width, tc.step, codes, dst, stride)
		})
	}
}

// TestStaticPlaneSmall: on a plane of 8 tokens a static plane with the
// right models costs less than a step plane (which stores every
// channel's mean and model), and close to the entropy of the quantized
// Gaussians; under models of the wrong spread it costs more.
func TestStaticPlaneSmall(t *testing.T) {
	const n, width, step = 8, 64, 0.25
	x, sd := gaussData(3, n, width)
	var pc PlaneCoder
	static, err := pc.AppendStaticPlane(nil, x, n, width, width, step, gaussCodes(sd, step))
	if err != nil {
		t.Fatal(err)
	}
	stepped, err := pc.AppendStepPlane(nil, x, n, width, width, step)
	if err != nil {
		t.Fatal(err)
	}
	// The entropy of round(X/step), X ~ N(0, sd²), summed over the plane.
	var ent float64
	for _, s := range sd {
		var h float64
		for q := -200; q <= 200; q++ {
			a, b := (float64(q)-0.5)*step/s, (float64(q)+0.5)*step/s
			p := 0.5 * (math.Erfc(-b/math.Sqrt2) - math.Erfc(-a/math.Sqrt2))
			if p > 0 {
				h -= p * math.Log2(p)
			}
		}
		ent += h * n
	}
	bits := float64(8 * len(static))
	t.Logf("8×64 plane: static %d bytes (%.2f bits an element), step plane %d, entropy %.0f bytes", len(static), bits/(n*width), len(stepped), ent/8)
	if len(static) >= len(stepped) {
		t.Errorf("static plane %d bytes, step plane %d: want smaller", len(static), len(stepped))
	}
	if bits > 1.15*ent+64 {
		t.Errorf("static plane %.0f bits, entropy %.0f", bits, ent)
	}
	wide := make([]byte, width)
	for c := range wide {
		wide[c] = ModelCode(16*sd[c]/step, true)
	}
	off, err := pc.AppendStaticPlane(nil, x, n, width, width, step, wide)
	if err != nil {
		t.Fatal(err)
	}
	if len(off) <= len(static) {
		t.Errorf("models 16× too wide: %d bytes, right models %d", len(off), len(static))
	}
}

func TestStaticPlaneErrors(t *testing.T) {
	x, sd := gaussData(1, 8, 4)
	codes := gaussCodes(sd, 0.1)
	var pc PlaneCoder
	for _, tc := range []struct {
		name    string
		x       []float32
		n, w, s int
		step    float32
		codes   []byte
	}{
		{"short", x[:10], 8, 4, 4, 1, codes},
		{"stride", x, 8, 4, 3, 1, codes},
		{"step 0", x, 8, 4, 4, 0, codes},
		{"step NaN", x, 8, 4, 4, float32(math.NaN()), codes},
		{"codes", x, 8, 4, 4, 1, codes[:3]},
		{"far", []float32{0, 1e9}, 2, 1, 1, 1e-3, codes[:1]},
		{"inf", []float32{0, float32(math.Inf(1))}, 2, 1, 1, 1, codes[:1]},
		{"nan", []float32{float32(math.NaN()), 0}, 2, 1, 1, 1, codes[:1]},
	} {
		if _, err := pc.AppendStaticPlane(nil, tc.x, tc.n, tc.w, tc.s, tc.step, tc.codes); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	p, err := pc.AppendStaticPlane(nil, x, 8, 4, 4, 0.1, codes)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 32)
	for i := 0; i < len(p); i++ {
		if err := DecodeStaticPlane(p[:i], 8, 4, 0.1, codes, dst, 4); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", i, len(p))
		}
	}
	bad := append([]byte{StaticVersion + 1}, p[1:]...)
	if err := DecodeStaticPlane(bad, 8, 4, 0.1, codes, dst, 4); err == nil || IsCorrupt(err) {
		t.Errorf("version %d: %v, want a version error", bad[0], err)
	}
	if err := DecodeStaticPlane(append(p, 0), 8, 4, 0.1, codes, dst, 4); !IsCorrupt(err) {
		t.Errorf("a byte more: %v, want corrupt", err)
	}
	if err := DecodeStaticPlane(p, 8, 4, 0.1, codes[:2], dst, 4); err == nil {
		t.Errorf("two model codes for four channels: no error")
	}
}

func FuzzDecodeStaticPlane(f *testing.F) {
	var pc PlaneCoder
	for i, step := range []float32{0.01, 1, 100} {
		x, sd := gaussData(uint64(i), 8, 4)
		codes := gaussCodes(sd, step)
		p, err := pc.AppendStaticPlane(nil, x, 8, 4, 4, step, codes)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p, uint8(8), uint8(4), step, codes[0])
	}
	f.Fuzz(func(t *testing.T, data []byte, n, w uint8, step float32, code byte) {
		width := max(1, int(w))
		codes := make([]byte, width)
		for c := range codes {
			codes[c] = code + byte(c)
		}
		dst := make([]float32, max(1, int(n))*width)
		err := DecodeStaticPlane(data, int(n), width, step, codes, dst, width)
		if err == nil && !(step >= minStep && step <= maxStep) {
			t.Fatalf("step %g accepted", step)
		}
	})
}
