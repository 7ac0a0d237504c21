package kv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant/ggml"
)

// dequantizer is what every compressed cache of this package offers its
// tests: its keys and values as it holds them.
type dequantizer interface {
	dequant(layer, head, n int) (k, v [][]float32)
}

var testCfg = model.Config{Arch: "llama", Dim: 256, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 64}

// testSpecs are the compressed caches tested, with a bound on the relative
// RMS error of their stored keys and values.
var testSpecs = []struct {
	spec string
	rel  float64
}{
	{"f16", 1e-3},
	{"bf16", 8e-3},
	{"q8_0", 0.01},
	{"q5_0", 0.08},
	{"q5_1", 0.05},
	{"q4_0", 0.15},
	{"q4_1", 0.1},
	{"iq4_nl", 0.15},
	{"kivi:k8v8:g32:r32", 0.01},
	{"kivi:k4v4:g32:r64", 0.15},
	{"kivi:k4v2:g32:r0", 0.5},
	{"kivi:k2v2:g32:r128", 0.5},
	{"kivi:k2v2:g16:r32", 0.5},
	{"kivi:k4v4:g32:r256", 0.15}, // a window longer than the capacity
	{"zip", 0.5},
	{"zip:h8:l4:f0.5:g32:s4", 0.15},
	{"zip:h4:l2:f0.3:g64:s1:p", 0.5},
	{"stair", 0.5},
	{"stair:b8/4/3:w16/32:g16:s2", 0.3},
	{"stair:b16/8:w40:g64:p", 0.01},
	{"stair:b3", 0.3},
	{"gear", 0.15},
	{"gear:b2:g16:o5:r4:c16", 0.5},
	{"gear:b3:g64:o0:r0:c64", 0.3},
	{"gear:b8:o10:r8:c48", 0.01},
	{"rq", 0.25},
	{"rq:k4:v2.5:s2", 0.4},
	{"rq:k8:v16:s0", 0.01},
	{"rq:k3/5:v2/4.5:p", 0.6},
	{"rq:m", 0.25},
	{"rq:k2.5:v4:s40:m", 0.4},
	{"rq:k4:m:p", 0.3},
}

// kvRows are random key and value rows with a few outlier channels (as
// real keys have).
func kvRows(rng *rand.Rand, n, d int) (k, v [][]float32) {
	for p := 0; p < n; p++ {
		kr, vr := make([]float32, d), make([]float32, d)
		for c := range kr {
			kr[c] = float32(rng.NormFloat64())
			if c%17 == 3 {
				kr[c] = 6 + kr[c]
			}
			vr[c] = float32(rng.NormFloat64())
		}
		k, v = append(k, kr), append(v, vr)
	}
	return k, v
}

// refQuery is the query as a cache scores it: Q8_0-rounded for the block
// types with an integer path, as it is otherwise.
func refQuery(c model.KVCache, q []float32) []float64 {
	out := make([]float64, len(q))
	if b, ok := c.(*blockCache); ok && b.intDot {
		a := &ggml.ActRow{Q: make([]int8, len(q)), D: make([]float32, len(q)/32), S: make([]float32, len(q)/32)}
		ggml.QuantizeActQ8_0(a, q)
		for i, x := range a.Q {
			out[i] = float64(x) * float64(a.D[i/32])
		}
		return out
	}
	for i, x := range q {
		out[i] = float64(x)
	}
	return out
}

// checkAttention compares c's Scores (for one query, as at decode, and
// for three, as in prefill) and WeightedSum over its first n positions with
// float64 attention over its own dequantized keys and values.
func checkAttention(t *testing.T, name string, c model.KVCache, rng *rand.Rand, n int) {
	t.Helper()
	hd := testCfg.HeadDim
	const qs, ds = 80, 300
	scratch := make([]float32, c.ScratchSize())
	for layer := 0; layer < testCfg.NLayers; layer++ {
		for head := 0; head < testCfg.NKVHeads; head++ {
			keys, vals := c.(dequantizer).dequant(layer, head, n)
			for _, nq := range []int{1, 3} {
				q := make([]float32, nq*qs)
				for i := range q {
					q[i] = float32(rng.NormFloat64())
				}
				dst := make([]float32, nq*ds)
				const scale = 0.125
				if err := c.Scores(layer, head, q, qs, nq, n, scale, dst, ds, scratch); err != nil {
					t.Fatalf("%s: Scores: %v", name, err)
				}
				for i := 0; i < nq; i++ {
					qi := refQuery(c, q[i*qs:i*qs+hd])
					for p := 0; p < n; p++ {
						var s, mag float64
						for j, x := range qi {
							s += x * float64(keys[p][j])
							mag += math.Abs(x * float64(keys[p][j]))
						}
						s *= scale
						if got := float64(dst[i*ds+p]); math.Abs(got-s) > 1e-5*(mag*scale+1) {
							t.Fatalf("%s: layer %d head %d n %d: score[%d][%d] of %d = %g, reference %g", name, layer, head, n, i, p, nq, got, s)
						}
					}
				}
			}
			w := make([]float32, n)
			for p := range w {
				w[p] = rng.Float32()
			}
			out := make([]float32, hd)
			if err := c.WeightedSum(layer, head, w, out, scratch); err != nil {
				t.Fatalf("%s: WeightedSum: %v", name, err)
			}
			for j := range out {
				var s, mag float64
				for p := range w {
					s += float64(w[p]) * float64(vals[p][j])
					mag += math.Abs(float64(w[p]) * float64(vals[p][j]))
				}
				if math.Abs(float64(out[j])-s) > 1e-5*(mag+1) {
					t.Fatalf("%s: layer %d head %d n %d: sum[%d] = %g, reference %g", name, layer, head, n, j, out[j], s)
				}
			}
		}
	}
}

// relRMS is the RMS error of got against want over the RMS of want.
func relRMS(got, want [][]float32) float64 {
	var e, s float64
	for p := range want {
		for j := range want[p] {
			d := float64(got[p][j] - want[p][j])
			e += d * d
			s += float64(want[p][j]) * float64(want[p][j])
		}
	}
	return math.Sqrt(e / s)
}

func TestCacheAttention(t *testing.T) {
	for _, tc := range testSpecs {
		t.Run(tc.spec, func(t *testing.T) { cacheAttention(t, tc.spec, tc.rel) })
	}
}

// cacheAttention fills a cache of the spec with 200 random positions,
// checking its attention against its own stored form along the way, the
// stored form against what was appended (relative RMS error at most rel),
// bad calls, and truncation.
func cacheAttention(t *testing.T, spec string, rel float64) {
	const positions = 200
	sp, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sp.New(&testCfg, positions)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	d := testCfg.KVDim(0)
	ks, vs := [2][][]float32{}, [2][][]float32{}
	for l := range ks {
		ks[l], vs[l] = kvRows(rng, positions, d)
	}
	checks := map[int]bool{1: true, 15: true, 16: true, 31: true, 32: true, 33: true, 64: true, 100: true, 129: true, 200: true}
	for p := 0; p < positions; p++ {
		for l := range ks {
			if err := c.Append(l, ks[l][p], vs[l][p]); err != nil {
				t.Fatal(err)
			}
		}
		if checks[p+1] {
			checkAttention(t, spec, c, rng, p+1)
		}
	}
	if c.Len() != positions {
		t.Fatalf("Len %d after %d appends", c.Len(), positions)
	}
	// The stored form is close to what was appended.
	for l := range ks {
		for h := 0; h < testCfg.NKVHeads; h++ {
			k, v := c.(dequantizer).dequant(l, h, positions)
			want := func(rows [][]float32) [][]float32 {
				out := make([][]float32, len(rows))
				for p, r := range rows {
					out[p] = r[h*testCfg.HeadDim : (h+1)*testCfg.HeadDim]
				}
				return out
			}
			if e := relRMS(k, want(ks[l])); e > rel {
				t.Errorf("layer %d head %d: keys' relative RMS error %.4g > %g", l, h, e, rel)
			}
			if e := relRMS(v, want(vs[l])); e > rel {
				t.Errorf("layer %d head %d: values' relative RMS error %.4g > %g", l, h, e, rel)
			}
		}
	}
	if err := c.Append(0, ks[0][0], vs[0][0]); err == nil {
		t.Errorf("append past capacity: no error")
	}
	if err := c.Scores(0, 2, make([]float32, 64), 64, 1, 1, 1, make([]float32, 1), 1, make([]float32, c.ScratchSize())); err == nil {
		t.Errorf("Scores of KV head 2 of 2: no error")
	}
	if err := c.WeightedSum(0, 0, make([]float32, positions+1), make([]float32, 64), make([]float32, c.ScratchSize())); err == nil {
		t.Errorf("WeightedSum over more positions than held: no error")
	}

	// Truncate, refill, and attention still agrees with the stored form.
	if err := c.Truncate(45); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 45 {
		t.Fatalf("Len %d after Truncate(45)", c.Len())
	}
	checkAttention(t, spec, c, rng, 45)
	for p := 45; p < 170; p++ {
		for l := range ks {
			if err := c.Append(l, ks[l][p], vs[l][p]); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkAttention(t, spec, c, rng, 170)
	if err := c.Truncate(171); err == nil {
		t.Errorf("Truncate past Len: no error")
	}

}

// TestBlockTruncateExact: a block cache truncated and refilled holds what a
// fresh one filled the same way holds.
func TestBlockTruncateExact(t *testing.T) {
	sp, _ := Parse("q4_0")
	a, _ := sp.New(&testCfg, 64)
	b, _ := sp.New(&testCfg, 64)
	rng := rand.New(rand.NewPCG(3, 4))
	ks, vs := kvRows(rng, 64, testCfg.KVDim(0))
	for p := 0; p < 64; p++ {
		for l := 0; l < 2; l++ {
			a.Append(l, ks[p], vs[p])
			if p < 40 {
				b.Append(l, ks[p], vs[p])
			}
		}
	}
	b.Truncate(20)
	for p := 20; p < 64; p++ {
		for l := 0; l < 2; l++ {
			b.Append(l, ks[p], vs[p])
		}
	}
	ka, va := a.(dequantizer).dequant(1, 1, 64)
	kb, vb := b.(dequantizer).dequant(1, 1, 64)
	if relRMS(ka, kb) != 0 || relRMS(va, vb) != 0 {
		t.Errorf("truncated and refilled cache differs from a fresh one")
	}
}

func TestBitsPerElement(t *testing.T) {
	const positions = 512
	d := float64(testCfg.KVDim(0))
	for _, c := range []struct {
		spec      string
		positions int
		bits      float64
	}{
		{"f32", positions, 32},
		{"f16", positions, 16},
		{"q8_0", positions, 8.5},
		{"q4_0", positions, 4.5},
		{"q5_1", positions, 6},
		// keys: 2-bit codes, a 16-bit scale and minimum per 32 tokens
		// and channel, 128 binary16 residual rows; values: the same
		// codes and group overheads per 32 channels, 128 residual rows.
		{"kivi:k2v2:g32:r128", positions, (2 + 1 + 16*128.0/positions + 2 + 1 + 16*128.0/positions) / 2},
		{"kivi:k4v4:g64:r0", positions, (4 + 0.5 + 16*64.0/positions + 4 + 0.5) / 2},
		// A residual window beyond the capacity is held only up to it.
		{"kivi:k2v2:g32:r1024", positions, 2 + 1 + 16},
		{"kivi:k2v2:g32:r128", 64, 2 + 1 + 16},
	} {
		sp, err := Parse(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		cache, err := sp.New(&testCfg, c.positions)
		if err != nil {
			t.Fatal(err)
		}
		if got := BitsPerElement(cache, &testCfg); math.Abs(got-c.bits) > 1e-9 {
			t.Errorf("%s of %d positions: %.4f bits per element, want %.4f", c.spec, c.positions, got, c.bits)
		}
		if got, want := Elements(&testCfg, c.positions), int64(float64(c.positions)*2*2*d); got != want {
			t.Errorf("Elements = %d, want %d", got, want)
		}
	}
}

// TestConcurrentHeads reads every cache from several goroutines at once,
// on the same and on different heads, each with its own scratch, as the
// engine's head workers do; results equal a lone reader's (run with -race).
func TestConcurrentHeads(t *testing.T) {
	const n = 150
	for _, tc := range testSpecs {
		sp, _ := Parse(tc.spec)
		c, err := sp.New(&testCfg, n)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(9, 10))
		ks, vs := kvRows(rng, n, testCfg.KVDim(0))
		for p := 0; p < n; p++ {
			for l := 0; l < testCfg.NLayers; l++ {
				c.Append(l, ks[p], vs[p])
			}
		}
		q := make([]float32, 4*64)
		for i := range q {
			q[i] = float32(rng.NormFloat64())
		}
		w := make([]float32, n)
		for i := range w {
			w[i] = rng.Float32()
		}
		read := func(head int) ([]float32, []float32, error) {
			sc, out := make([]float32, 4*n), make([]float32, 64)
			scratch := make([]float32, c.ScratchSize())
			if err := c.Scores(1, head, q, 64, 4, n, 0.125, sc, n, scratch); err != nil {
				return nil, nil, err
			}
			return sc, out, c.WeightedSum(1, head, w, out, scratch)
		}
		var want [2][2][]float32
		for h := range want {
			want[h][0], want[h][1], _ = read(h)
		}
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			go func(h int) {
				sc, out, err := read(h)
				if err == nil && (relRMS([][]float32{sc}, [][]float32{want[h][0]}) != 0 || relRMS([][]float32{out}, [][]float32{want[h][1]}) != 0) {
					err = fmt.Errorf("head %d: concurrent read differs from a lone one", h)
				}
				errs <- err
			}(g % 2)
		}
		for g := 0; g < 8; g++ {
			if err := <-errs; err != nil {
				t.Errorf("%s: %v", tc.spec, err)
			}
		}
	}
}
