package kv

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLloydMax checks the fitted Gaussian codebooks against Max's
// published optimal quantizers (J. Max, "Quantizing for Minimum
// Distortion", 1960, table of output levels for the normal density) and
// their mean squared errors.
func TestLloydMax(t *testing.T) {
	for _, c := range []struct {
		bits int
		pos  []float64 // the non-negative levels
		mse  float64
	}{
		{1, []float64{0.7979}, 0.3634},
		{2, []float64{0.4528, 1.510}, 0.1175},
		{3, []float64{0.2451, 0.7560, 1.344, 2.152}, 0.03454},
		{4, []float64{0.1284, 0.3881, 0.6568, 0.9424, 1.256, 1.618, 2.069, 2.733}, 0.009497},
	} {
		lm := lmBook(c.bits)
		n := len(lm.level)
		if n != 1<<c.bits {
			t.Fatalf("%d bits: %d levels", c.bits, n)
		}
		for i, want := range c.pos {
			if got := float64(lm.level[n/2+i]); math.Abs(got-want) > 2e-3 {
				t.Errorf("%d bits: level %d = %.4f, Max's %.4f", c.bits, n/2+i, got, want)
			}
			if got := float64(lm.level[n/2-1-i]); math.Abs(got+want) > 2e-3 {
				t.Errorf("%d bits: level %d = %.4f, Max's %.4f", c.bits, n/2-1-i, got, -want)
			}
		}
		// Monte Carlo MSE of the codebook on unit Gaussian samples.
		rng := rand.New(rand.NewPCG(1, uint64(c.bits)))
		var se float64
		const m = 200000
		for range m {
			x := float32(rng.NormFloat64())
			d := float64(x - lm.level[lm.index(x)])
			se += d * d
		}
		if got := se / m; math.Abs(got-c.mse) > 0.03*c.mse {
			t.Errorf("%d bits: MSE %.5f, Max's %.5f", c.bits, got, c.mse)
		}
	}
	for b := 5; b <= 8; b++ {
		lm := lmBook(b)
		for i := 1; i < len(lm.level); i++ {
			if !(lm.level[i] > lm.level[i-1]) {
				t.Fatalf("%d bits: levels not ascending at %d", b, i)
			}
		}
	}
}

// refRQ is a plain reference of rqFmt: the scale by the same steps (root
// mean square, least squares on the codes, the best of the three nearest
// one-byte scales), each code by a linear search for the nearest level.
func refRQ(f rqFmt, x []float32) []float32 {
	out := make([]float32, len(x))
	if f.hi == 16 {
		for i, v := range x {
			out[i] = f16Round(v)
		}
		return out
	}
	nearest := func(i int, y float32) float32 {
		lv := lmBook(f.bits(i)).level
		best := lv[0]
		for _, l := range lv {
			if math.Abs(float64(y)-float64(l)) < math.Abs(float64(y)-float64(best)) {
				best = l
			}
		}
		return best
	}
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	if ss == 0 {
		return out
	}
	s := float32(math.Sqrt(ss / float64(len(x))))
	var num, den float64
	for i, v := range x {
		c := nearest(i, v/s)
		num += float64(v) * float64(c)
		den += float64(c) * float64(c)
	}
	if num > 0 {
		s = float32(num / den)
	}
	e0 := max(1, min(255, int(math.Round(8*math.Log2(float64(s))))+128))
	best, bestS := math.Inf(1), float32(0)
	for e := e0 - 1; e <= e0+1; e++ {
		if e < 1 || e > 255 {
			continue
		}
		sc := float32(math.Pow(2, float64(e-128)/8))
		var se float64
		for i, v := range x {
			d := float64(v) - float64(sc)*float64(nearest(i, v/sc))
			se += d * d
		}
		if se < best {
			best, bestS = se, sc
		}
	}
	for i, v := range x {
		out[i] = bestS * nearest(i, v/bestS)
	}
	return out
}

func TestRQFmt(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		bits float64
		hd   int
		want rqFmt
	}{
		{3, 64, rqFmt{3, 3, 0}},
		{2.5, 64, rqFmt{3, 2, 32}},
		{2.75, 64, rqFmt{3, 2, 48}},
		{4.1, 32, rqFmt{5, 4, 3}},
		{7.999, 64, rqFmt{8, 8, 64}},
		{7.99, 64, rqFmt{8, 7, 63}},
		{1, 16, rqFmt{1, 1, 0}},
		{5, 128, rqFmt{5, 5, 0}},
		{16, 64, rqFmt{16, 16, 64}},
	} {
		f := newRQFmt(c.bits, c.hd)
		if f != c.want {
			t.Fatalf("newRQFmt(%g, %d) = %+v, want %+v", c.bits, c.hd, f, c.want)
		}
		wantBytes := 1 + (f.nHi*f.hi+(c.hd-f.nHi)*f.lo+7)/8
		if f.hi == 16 {
			wantBytes = 2 * c.hd
		}
		if got := f.bytes(c.hd); got != wantBytes {
			t.Errorf("%+v: %d bytes, want %d", f, got, wantBytes)
		}
		for trial := 0; trial < 20; trial++ {
			x := make([]float32, c.hd)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * math.Exp(3*rng.Float64()-1.5))
			}
			switch trial {
			case 0:
				clear(x)
			case 1:
				x[0] = 1e6 // a large scale
			}
			row := make([]byte, f.bytes(c.hd))
			for i := range row {
				row[i] = 0xff // quant must overwrite every byte it uses
			}
			f.quant(row, x)
			got := make([]float32, c.hd)
			f.dequant(got, row)
			want := refRQ(f, x)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%+v trial %d: channel %d = %g, reference %g (x %g, scale code %d)", f, trial, i, got[i], want[i], x[i], row[0])
				}
			}
		}
	}
}

// TestRQError checks the error the rotation and the codebook buy on rows
// with outlier channels: rotated rows at 3 bits beat unrotated ones, and
// 4 bits beat 3.
func TestRQError(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	keys, _ := kvRows(rng, 200, 64)
	rot := newRotation(64)
	errOf := func(bits float64, rotate bool) float64 {
		f := newRQFmt(bits, 64)
		row := make([]byte, f.bytes(64))
		var se, ss float64
		y, z := make([]float32, 64), make([]float32, 64)
		for _, k := range keys {
			copy(y, k)
			if rotate {
				rot.forward(y, k)
			}
			f.quant(row, y)
			f.dequant(z, row)
			if rotate {
				rot.inverse(z, z)
			}
			for i := range z {
				d := float64(z[i] - k[i])
				se += d * d
				ss += float64(k[i]) * float64(k[i])
			}
		}
		return math.Sqrt(se / ss)
	}
	r3, p3, r4 := errOf(3, true), errOf(3, false), errOf(4, true)
	if !(r3 < 0.8*p3) || !(r4 < 0.6*r3) {
		t.Errorf("relative RMS error: rotated 3 bits %.4f, unrotated %.4f, rotated 4 bits %.4f", r3, p3, r4)
	}
}

// TestRQMean checks key-mean removal: on keys with a common offset (the
// outlier channels of kvRows) the stored keys past the first epoch are
// closer to the appended ones than without it, and a cache truncated
// below an epoch and refilled holds exactly what a fresh one holds.
func TestRQMean(t *testing.T) {
	const n = 200
	rng := rand.New(rand.NewPCG(11, 12))
	d := testCfg.KVDim(0)
	ks, vs := kvRows(rng, n, d)
	fill := func(spec string, trunc int) *rqCache {
		sp, err := Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		c, err := sp.New(&testCfg, n)
		if err != nil {
			t.Fatal(err)
		}
		for p := 0; p < n; p++ {
			for l := 0; l < testCfg.NLayers; l++ {
				if err := c.Append(l, ks[p], vs[p]); err != nil {
					t.Fatal(err)
				}
			}
			if p+1 == 150 && trunc > 0 {
				if err := c.Truncate(trunc); err != nil {
					t.Fatal(err)
				}
				p = trunc - 1
				trunc = 0
			}
		}
		return c.(*rqCache)
	}
	errOf := func(c *rqCache) float64 {
		k, _ := c.dequant(1, 1, n)
		want := make([][]float32, n)
		for p := range want {
			want[p] = ks[p][64:128]
		}
		return relRMS(k[rqEpochs[0]:], want[rqEpochs[0]:])
	}
	plain, mean := fill("rq:k3", 0), fill("rq:k3:m", 0)
	if ep, em := errOf(plain), errOf(mean); !(em < 0.9*ep) {
		t.Errorf("keys' relative RMS error with the mean removed %.4f, without %.4f", em, ep)
	}
	again := fill("rq:k3:m", 20)
	for l := 0; l < testCfg.NLayers; l++ {
		for h := 0; h < testCfg.NKVHeads; h++ {
			ka, va := mean.dequant(l, h, n)
			kb, vb := again.dequant(l, h, n)
			if relRMS(ka, kb) != 0 || relRMS(va, vb) != 0 {
				t.Fatalf("layer %d head %d: truncated and refilled cache differs from a fresh one", l, h)
			}
		}
	}
	if got, want := mean.Bytes()-plain.Bytes(), int64(testCfg.NLayers*testCfg.NKVHeads*len(rqEpochs)*64*2); got != want {
		t.Errorf("means cost %d bytes, want %d", got, want)
	}
}
