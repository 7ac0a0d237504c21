package model

import "math"

// ropeFreqs returns the HeadDim/2 inverse frequencies theta^(-2i/d), with
// the configured scaling applied (Llama 3's piecewise rule or linear).
func ropeFreqs(c *Config) []float64 {
	half := c.HeadDim / 2
	f := make([]float64, half)
	for i := range f {
		f[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
	}
	s := c.RopeScaling
	if s == nil {
		return f
	}
	if len(s.FreqFactors) == len(f) {
		for i := range f {
			f[i] /= s.FreqFactors[i]
		}
		return f
	}
	if s.Factor == 0 {
		return f
	}
	switch s.Type {
	case "linear":
		for i := range f {
			f[i] /= s.Factor
		}
	case "llama3":
		orig := float64(s.OriginalMaxPos)
		lowWavelen := orig / s.LowFreqFactor
		highWavelen := orig / s.HighFreqFactor
		for i, inv := range f {
			wavelen := 2 * math.Pi / inv
			switch {
			case wavelen < highWavelen:
			case wavelen > lowWavelen:
				f[i] = inv / s.Factor
			default:
				smooth := (orig/wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
				f[i] = (1-smooth)*inv/s.Factor + smooth*inv
			}
		}
	}
	return f
}

// ropeTable holds cos and sin for every position and frequency.
type ropeTable struct {
	half     int
	cos, sin []float32 // positions × half
}

func newRopeTable(c *Config, positions int) *ropeTable {
	freqs := ropeFreqs(c)
	half := len(freqs)
	t := &ropeTable{half: half, cos: make([]float32, positions*half), sin: make([]float32, positions*half)}
	for p := 0; p < positions; p++ {
		for i, f := range freqs {
			// Angles are formed in float32, as Hugging Face and ggml do.
			a := float64(float32(p) * float32(f))
			t.cos[p*half+i] = float32(math.Cos(a))
			t.sin[p*half+i] = float32(math.Sin(a))
		}
	}
	return t
}

// apply rotates the heads laid end to end in x (each headDim long) for position pos.
func (t *ropeTable) apply(x []float32, pos, headDim int, style RopeStyle) {
	cos := t.cos[pos*t.half : (pos+1)*t.half]
	sin := t.sin[pos*t.half : (pos+1)*t.half]
	for h := 0; h+headDim <= len(x); h += headDim {
		v := x[h : h+headDim]
		if style == RopeHalf {
			a, b := v[:t.half], v[t.half:2*t.half]
			for i := range a {
				x0, x1 := a[i], b[i]
				a[i] = x0*cos[i] - x1*sin[i]
				b[i] = x0*sin[i] + x1*cos[i]
			}
			continue
		}
		for i := 0; i < t.half; i++ {
			x0, x1 := v[2*i], v[2*i+1]
			v[2*i] = x0*cos[i] - x1*sin[i]
			v[2*i+1] = x0*sin[i] + x1*cos[i]
		}
	}
}
