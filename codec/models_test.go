package codec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/model"
)

// TestModelTables checks every parametric table: all symbols codable,
// probabilities summing to one, and the symbol probabilities against a
// reference summed value by value from the density (within 1.5%: every
// symbol's frequency of at least 1/4096 comes out of the others in
// proportion).
func TestModelTables(t *testing.T) {
	for m := range modelCodes {
		tab := modelTable(byte(m))
		if tab.Len() != maxSym {
			t.Fatalf("model %d: %d symbols, want %d", m, tab.Len(), maxSym)
		}
		var sum int
		for s := range maxSym {
			if tab.Freq(s) < 1 {
				t.Fatalf("model %d: symbol %d has no probability", m, s)
			}
			sum += tab.Freq(s)
		}
		if sum != 1<<ProbBits {
			t.Fatalf("model %d: frequencies sum to %d", m, sum)
		}
	}
	// Reference: the probability of each z under a Laplace of scale b
	// and a Gaussian of deviation b, by integrating the density over
	// [q−½, q+½] numerically, summed over the z of each symbol.
	for _, m := range []int{spreadBias, spreadBias + 16, spreadBias + 37, 128 | spreadBias + 8, 128 | spreadBias + 30} {
		b := spreadOf(m)
		dens := func(x float64) float64 {
			if m&128 == 0 {
				return math.Exp(-math.Abs(x)/b) / (2 * b)
			}
			return math.Exp(-x*x/(2*b*b)) / (b * math.Sqrt(2*math.Pi))
		}
		var p [maxSym]float64
		for z := uint64(0); z < 1<<12; z++ {
			q := float64(unzigzag(z))
			var mass float64
			const steps = 200
			for i := range steps {
				mass += dens(q-0.5+(float64(i)+0.5)/steps) / steps
			}
			s, _, _ := symbolOf(z)
			p[s] += mass
		}
		tab := modelTable(byte(m))
		for s := range maxSym {
			got := float64(tab.Freq(s)) / (1 << ProbBits)
			if p[s] > 0.01 && math.Abs(got-p[s]) > 0.015*p[s]+2.0/(1<<ProbBits) {
				t.Errorf("model %d (spread %.3g): symbol %d probability %.4f, reference %.4f", m, b, s, got, p[s])
			}
		}
	}
}

// TestMeanPlaneRate codes channels of Laplace and Gaussian noise: each
// costs close to the entropy of its quantized distribution, and a
// channel 64 times wider costs 6 bits more per element (one bin for the
// plane: bits go where the variance is).
func TestMeanPlaneRate(t *testing.T) {
	const n, w = 4096, 4
	rng := rand.New(rand.NewPCG(7, 8))
	sd := []float64{1, 64, 1, 64}
	x := make([]float32, n*w)
	for i := range n {
		for c := range w {
			v := rng.NormFloat64() // channels 0, 1 Gaussian
			if c >= 2 {
				v = rng.ExpFloat64() * (1 - 2*float64(rng.IntN(2))) / math.Sqrt2 // Laplace, unit variance
			}
			x[i*w+c] = float32(3 + sd[c]*v)
		}
	}
	cost := func(c int, mult float32) float64 {
		var pc PlaneCoder
		one := make([]float32, n)
		for i := range n {
			one[i] = x[i*w+c]
		}
		p, err := pc.AppendPlane(nil, one, n, 1, 1, mult, 0)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, n)
		if err := DecodePlane(p, n, 1, mult, 0, y, 1); err != nil {
			t.Fatal(err)
		}
		return float64(len(p)) * 8 / n
	}
	var pc PlaneCoder
	const mult = 1.0 / 8
	p, err := pc.AppendPlane(nil, x, n, w, w, mult, 0)
	if err != nil {
		t.Fatal(err)
	}
	step := float64(mult * scaleOf(p[0]))
	// Entropy of the quantized channels, by reference formulas.
	entropy := func(c int) float64 {
		s := sd[c] / step
		var h float64
		for q := -math.Round(40*s) - 1; q <= math.Round(40*s)+1; q++ {
			var pr float64
			if c < 2 {
				pr = 0.5 * (math.Erf((q+0.5)/(s*math.Sqrt2)) - math.Erf((q-0.5)/(s*math.Sqrt2)))
			} else {
				cdf := func(x float64) float64 {
					b := s / math.Sqrt2
					if x < 0 {
						return 0.5 * math.Exp(x/b)
					}
					return 1 - 0.5*math.Exp(-x/b)
				}
				pr = cdf(q+0.5) - cdf(q-0.5)
			}
			if pr > 0 {
				h -= pr * math.Log2(pr)
			}
		}
		return h
	}
	// Code each channel alone at the same bin as in the plane.
	var sum float64
	for c := range w {
		// The plane's scale of one channel is its own deviation; scale
		// the multiplier so the bin matches.
		var m2, s1 float64
		for i := range n {
			s1 += float64(x[i*w+c])
		}
		for i := range n {
			d := float64(x[i*w+c]) - s1/n
			m2 += d * d
		}
		mc := float32(step / float64(scaleOf(scaleCode(math.Sqrt(m2/n)))))
		got, want := cost(c, mc), entropy(c)
		if got < want-0.05 || got > want+0.12 {
			t.Errorf("channel %d (deviation %g bins): %.3f bits per element, entropy %.3f", c, sd[c]/step, got, want)
		}
		sum += got
	}
	if d := float64(len(p))*8/(n*w) - sum/w; math.Abs(d) > 0.05 {
		t.Errorf("plane of the four: %.3f bits per element, channels alone %.3f", float64(len(p))*8/(n*w), sum/w)
	}
}

// TestMeanPlaneSpike: one channel with a spike far out does not coarsen
// the bins of the others (its variance is clipped in the plane's scale).
func TestMeanPlaneSpike(t *testing.T) {
	b := testBlock(11, 1, 64, []int{32})
	x := b.K[0]
	x[5*32+7] = 1e5
	var pc PlaneCoder
	p, err := pc.AppendPlane(nil, x, 64, 32, 32, 1.0/32, 0)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(x))
	if err := DecodePlane(p, 64, 32, 1.0/32, 0, y, 32); err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if c := i % 32; c != 7 && c != 2 && math.Abs(float64(x[i]-y[i])) > 0.2 {
			t.Fatalf("token %d channel %d: %v decoded as %v", i/32, c, x[i], y[i])
		}
	}
	_ = model.KVBlock{}
}
