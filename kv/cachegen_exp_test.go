package kv

// Measurement tools for the CacheGen coder, skipped unless their
// environment variable is set (each runs pdtext-llama-28m through eval,
// tens of seconds): TestCGExp codes full chunks with a reference
// quantizer in a float cache and reports estimated bits (ideal code
// lengths under per-channel Laplace/Gaussian models plus headers) and
// KLD; TestCGPred the held-out gain of linear prediction across layers;
// TestCGCross that prediction through the meter. See the functions for
// their variables (CGEXP, KOFF, VOFF, KW, KEEP0, CH, WIN, CGPRED,
// CGCROSS, CGCROSS_NOPRED, CALWIN).

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
)

// expCache: float32 storage; each full chunk of C positions of a layer is
// quantized in place by quant, which returns the estimated bits.
type expCache struct {
	cfg   *model.Config
	C     int
	k, v  [][]float32
	lens  []int
	quant func(layer int, pos0 int, k, v []float32) float64
	bits  float64
	elems int64
	qq    [][][]float64 // layer, kv head: hd×hd second moment of queries
	nq    [][]float64
}

func (c *expCache) Append(l int, k, v []float32) error {
	c.k[l] = append(c.k[l], k...)
	c.v[l] = append(c.v[l], v...)
	c.lens[l]++
	if c.lens[l]%c.C == 0 {
		d := len(k)
		p0 := c.lens[l] - c.C
		c.bits += c.quant(l, p0, c.k[l][p0*d:], c.v[l][p0*d:])
		c.elems += int64(2 * c.C * d)
	}
	return nil
}

func (c *expCache) Scores(l, h int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
	d := c.cfg.KVDim(l)
	hd := c.cfg.HeadDim
	if c.qq != nil {
		m := c.qq[l][h]
		for i := 0; i < nq; i++ {
			x := q[i*qs : i*qs+hd]
			for a := 0; a < hd; a++ {
				for b := 0; b < hd; b++ {
					m[a*hd+b] += float64(x[a]) * float64(x[b])
				}
			}
			c.nq[l][h]++
		}
	}
	kernel.Scores(dst, ds, q, qs, nq, c.k[l][h*hd:], d, n, hd, scale)
	return nil
}

func (c *expCache) WeightedSum(l, h int, w, dst []float32, scratch []float32) error {
	kernel.WeightedSum(dst, w, c.v[l][h*c.cfg.HeadDim:], c.cfg.KVDim(l))
	return nil
}

func (c *expCache) Truncate(n int) error {
	for l := range c.k {
		c.k[l] = c.k[l][:n*c.cfg.KVDim(l)]
		c.v[l] = c.v[l][:n*c.cfg.KVDim(l)]
		c.lens[l] = n
	}
	return nil
}
func (c *expCache) Len() int         { return c.lens[len(c.lens)-1] }
func (c *expCache) Cap() int         { return 1 << 20 }
func (c *expCache) Bytes() int64     { return 0 }
func (c *expCache) ScratchSize() int { return 0 }

// laplaceBits: ideal code length of integer q's under a discretized
// Laplace (scale b bins) centred at 0; gaussBits the same for a Gaussian.
func laplaceBits(qs []int64, b float64) float64 {
	b = max(b, 0.02)
	var s float64
	for _, q := range qs {
		a := math.Abs(float64(q))
		var p float64
		if a == 0 {
			p = 1 - math.Exp(-0.5/b)
		} else {
			p = 0.5 * (math.Exp(-(a-0.5)/b) - math.Exp(-(a+0.5)/b))
		}
		s -= math.Log2(max(p, 1.0/4096))
	}
	return s
}

func gaussBits(qs []int64, sd float64) float64 {
	sd = max(sd, 0.05)
	var s float64
	for _, q := range qs {
		a := math.Abs(float64(q))
		p := 0.5 * (math.Erf((a+0.5)/(sd*math.Sqrt2)) - math.Erf((a-0.5)/(sd*math.Sqrt2)))
		if a > 0 {
			p /= 1
		}
		s -= math.Log2(max(p, 1.0/4096))
	}
	return s
}

// codeChannel quantizes x (n values, stride) with step around its mean;
// returns bits (8 header bits for scale + 8 for mean) and writes back.
func codeChannel(x []float32, n, stride int, step float64, buf []int64) float64 {
	var mean float64
	for t := 0; t < n; t++ {
		mean += float64(x[t*stride])
	}
	mean /= float64(n)
	mq := math.Round(mean / step)
	mu := mq * step
	buf = buf[:0]
	var sa, s2 float64
	for t := 0; t < n; t++ {
		q := int64(math.Round((float64(x[t*stride]) - mu) / step))
		buf = append(buf, q)
		x[t*stride] = float32(mu + float64(q)*step)
		sa += math.Abs(float64(q))
		s2 += float64(q * q)
	}
	b := sa / float64(n)
	sd := math.Sqrt(s2 / float64(n))
	hdr := 8 + math.Max(1, math.Log2(1+math.Abs(mq))*1.2)
	return hdr + math.Min(laplaceBits(buf, b), gaussBits(buf, sd)) + 1
}

type expParams struct {
	kStep, vStep []float64 // per layer absolute step scale (times plane RMS)
	mode         string
	preRope      bool
	kw           [][][]float64 // per layer, head: per-channel weight for keys
	onlyK, onlyV bool
	layer        int // -1 all
}

func runExp(t *testing.T, m *model.Model, stream []int, base eval.Options, p expParams, stats bool) (bitsPer, kld float64, c0 *expCache) {
	cfg := &m.Config
	r := model.NewRunner(m, 0)
	var caches []*expCache
	r.NewCache = func(n int) (model.KVCache, error) {
		L := cfg.NLayers
		c := &expCache{cfg: cfg, C: int(envF("CH", 64)), k: make([][]float32, L), v: make([][]float32, L), lens: make([]int, L)}
		if stats {
			c.qq, c.nq = make([][][]float64, L), make([][]float64, L)
			for l := range L {
				nh := cfg.KVDim(l) / cfg.HeadDim
				c.qq[l], c.nq[l] = make([][]float64, nh), make([]float64, nh)
				for h := range nh {
					c.qq[l][h] = make([]float64, cfg.HeadDim*cfg.HeadDim)
				}
			}
		}
		buf := make([]int64, 0, 64)
		c.quant = func(l, p0 int, k, v []float32) float64 {
			d := cfg.KVDim(l)
			hd := cfg.HeadDim
			var bits float64
			var keep0k, keep0v []float32
			if p0 == 0 && os.Getenv("KEEP0") != "" {
				keep0k, keep0v = append([]float32(nil), k[:d]...), append([]float32(nil), v[:d]...)
				defer func() { copy(k, keep0k); copy(v, keep0v) }()
				bits += 2 * 32 * float64(d)
			}
			if p.preRope && !p.onlyV {
				for tk := 0; tk < c.C; tk++ {
					b := &model.KVBlock{Start: p0 + tk, Len: 1, KVDim: []int{d}, K: [][]float32{k[tk*d : (tk+1)*d]}, V: [][]float32{nil}}
					model.ShiftKeys(cfg, b, 0)
				}
			}
			for kind, x := range [2][]float32{k, v} {
				if (kind == 0 && p.onlyV) || (kind == 1 && p.onlyK) || (p.layer >= 0 && l != p.layer) {
					bits += 8 * 4 * float64(c.C*d) // raw
					continue
				}
				st := p.kStep[l]
				if kind == 1 {
					st = p.vStep[l]
				}
				for h := 0; h < d/hd; h++ {
					// plane RMS around channel means
					var ss float64
					sds := make([]float64, hd)
					for ch := 0; ch < hd; ch++ {
						var mu, s2 float64
						for tk := 0; tk < c.C; tk++ {
							mu += float64(x[tk*d+h*hd+ch])
						}
						mu /= float64(c.C)
						for tk := 0; tk < c.C; tk++ {
							e := float64(x[tk*d+h*hd+ch]) - mu
							s2 += e * e
						}
						sds[ch] = math.Sqrt(s2 / float64(c.C))
						ss += s2
					}
					rms := math.Sqrt(ss / float64(c.C*hd))
					for ch := 0; ch < hd; ch++ {
						var step float64
						switch p.mode {
						case "cg": // per channel sd
							step = st * max(sds[ch], 1e-6)
						default: // common
							step = st * rms
							if kind == 0 && p.kw != nil {
								step /= math.Sqrt(p.kw[l][h][ch])
							}
						}
						b := codeChannel(x[h*hd+ch:], c.C, d, step, buf)
						bits += b
						kvBits[kind] += b
						kvEl[kind] += float64(c.C)
					}
				}
			}
			if p.preRope && !p.onlyV {
				for tk := 0; tk < c.C; tk++ {
					b := &model.KVBlock{Start: 0, Len: 1, KVDim: []int{d}, K: [][]float32{k[tk*d : (tk+1)*d]}, V: [][]float32{nil}}
					model.ShiftKeys(cfg, b, p0+tk)
				}
			}
			return bits
		}
		caches = append(caches, c)
		return c, nil
	}
	opt := base
	opt.Base, opt.BaseName = model.NewRunner(m, 0), "f32"
	res, err := eval.Evaluate(r, stream, opt)
	if err != nil {
		t.Fatal(err)
	}
	var bits float64
	var el int64
	for _, c := range caches {
		bits += c.bits
		el += c.elems
	}
	return bits / float64(el), res.KLDMean, caches[0]
}

var kvBits, kvEl [2]float64

func envF(k string, d float64) float64 {
	if s := os.Getenv(k); s != "" {
		f, _ := strconv.ParseFloat(s, 64)
		return f
	}
	return d
}

func TestCGExp(t *testing.T) {
	if os.Getenv("CGEXP") == "" {
		t.Skip()
	}
	ck, err := load.Open(testshared.Path(t, "models/pdtext-llama-28m"), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	raw, _ := os.ReadFile(testshared.Path(t, "data/pdtext-val.txt"))
	stream := eval.Stream(ck.Tokenizer, string(raw), "")
	m := ck.Model
	base := eval.Options{Protocol: eval.ProtocolLlamaCpp, Ctx: 512, Windows: int(envF("WIN", 4)), BOS: ck.Tokenizer.BOS()}
	L := m.Config.NLayers
	mk := func(v float64, early float64) []float64 {
		s := make([]float64, L)
		for l := range s {
			e := 0.0
			switch {
			case 3*l < L:
				e = early
			case 3*l < 2*L:
				e = early / 2
			}
			s[l] = v * math.Exp2(-e)
		}
		return s
	}
	var kw [][][]float64
	if os.Getenv("KW") != "" {
		_, _, c := runExp(t, m, stream, eval.Options{Protocol: eval.ProtocolLlamaCpp, Ctx: 512, Windows: 2, BOS: ck.Tokenizer.BOS()}, expParams{kStep: mk(1e-9, 0), vStep: mk(1e-9, 0)}, true)
		hd := m.Config.HeadDim
		kw = make([][][]float64, L)
		pw := envF("KW", 1)
		for l := range L {
			kw[l] = make([][]float64, len(c.qq[l]))
			for h := range c.qq[l] {
				w := make([]float64, hd)
				var s float64
				for a := range hd {
					w[a] = c.qq[l][h][a*hd+a] / c.nq[l][h]
				}
				// RoPE pairs share weight
				for a := 0; a < hd/2; a++ {
					i, j := a, a+hd/2
					if m.Config.RopeStyle == model.RopeInterleaved {
						i, j = 2*a, 2*a+1
					}
					x := (w[i] + w[j]) / 2
					w[i], w[j] = x, x
				}
				for a := range hd {
					w[a] = math.Pow(w[a], pw)
					s += w[a]
				}
				for a := range hd {
					w[a] /= s / float64(hd)
				}
				kw[l][h] = w
			}
		}
		t.Logf("kw layer0 head0: %.3v", kw[0][0])
	}
	for _, spec := range strings.Split(os.Getenv("CGEXP"), ",") {
		f := strings.Split(spec, "/")
		p := expParams{mode: f[0], layer: -1}
		ks, _ := strconv.ParseFloat(f[1], 64)
		vs, _ := strconv.ParseFloat(f[2], 64)
		early, _ := strconv.ParseFloat(f[3], 64)
		p.kStep, p.vStep = mk(ks, early), mk(vs, early)
		for kind, env := range []string{"KOFF", "VOFF"} {
			if e := os.Getenv(env); e != "" && early < 0 {
				for l, x := range strings.Split(e, ":") {
					o, _ := strconv.ParseFloat(x, 64)
					if kind == 0 {
						p.kStep[l] = ks * math.Exp2(-o)
					} else {
						p.vStep[l] = vs * math.Exp2(-o)
					}
				}
			}
		}
		for _, o := range f[4:] {
			switch o {
			case "pre":
				p.preRope = true
			case "k":
				p.onlyK = true
			case "v":
				p.onlyV = true
			case "L0", "L1", "L2", "L3", "L4", "L5", "L6", "L7":
				p.layer = int(o[1] - '0')
			case "w":
				p.kw = kw
			}
		}
		kvBits, kvEl = [2]float64{}, [2]float64{}
		b, kld := func() (float64, float64) { b, k, _ := runExp(t, m, stream, base, p, false); return b, k }()
		t.Logf("%-30s bits %.3f  KLD %.6f", spec, b, kld)
		fmt.Fprintf(os.Stderr, "%-30s bits %.3f  KLD %.6f  K %.3f V %.3f\n", spec, b, kld, kvBits[0]/kvEl[0], kvBits[1]/kvEl[1])
	}
}

func cholSolve(A []float64, p int, B []float64, q int) {
	// A p×p SPD (overwritten), B p×q overwritten with A^-1 B
	for j := 0; j < p; j++ {
		s := A[j*p+j]
		for k := 0; k < j; k++ {
			s -= A[j*p+k] * A[j*p+k]
		}
		s = math.Sqrt(max(s, 1e-12))
		A[j*p+j] = s
		for i := j + 1; i < p; i++ {
			t := A[i*p+j]
			for k := 0; k < j; k++ {
				t -= A[i*p+k] * A[j*p+k]
			}
			A[i*p+j] = t / s
		}
	}
	for c := 0; c < q; c++ {
		for i := 0; i < p; i++ {
			t := B[i*q+c]
			for k := 0; k < i; k++ {
				t -= A[i*p+k] * B[k*q+c]
			}
			B[i*q+c] = t / A[i*p+i]
		}
		for i := p - 1; i >= 0; i-- {
			t := B[i*q+c]
			for k := i + 1; k < p; k++ {
				t -= A[k*p+i] * B[k*q+c]
			}
			B[i*q+c] = t / A[i*p+i]
		}
	}
}

// predGain: bits saved per element (Gaussian, common step) predicting Y
// from X (rows n), fit on the first half, evaluated on the second.
func predGain(X []float64, p int, Y []float64, q int, n int) float64 {
	p1 := p + 1
	nf := n / 2
	A := make([]float64, p1*p1)
	B := make([]float64, p1*q)
	row := make([]float64, p1)
	for t := 0; t < nf; t++ {
		copy(row, X[t*p:(t+1)*p])
		row[p] = 1
		for i := 0; i < p1; i++ {
			for j := 0; j < p1; j++ {
				A[i*p1+j] += row[i] * row[j]
			}
			for c := 0; c < q; c++ {
				B[i*q+c] += row[i] * Y[t*q+c]
			}
		}
	}
	var tr float64
	for i := 0; i < p; i++ {
		tr += A[i*p1+i]
	}
	for i := 0; i < p; i++ {
		A[i*p1+i] += 1e-3 * tr / float64(p)
	}
	cholSolve(A, p1, B, q)
	var saved float64
	for c := 0; c < q; c++ {
		var mu, v, r float64
		for t := nf; t < n; t++ {
			mu += Y[t*q+c]
		}
		mu /= float64(n - nf)
		for t := nf; t < n; t++ {
			pr := B[p*q+c]
			for i := 0; i < p; i++ {
				pr += X[t*p+i] * B[i*q+c]
			}
			e := Y[t*q+c] - mu
			v += e * e
			e = Y[t*q+c] - pr
			r += e * e
		}
		saved += 0.5 * math.Log2(v/r)
	}
	return saved / float64(q)
}

func TestCGPred(t *testing.T) {
	if os.Getenv("CGPRED") == "" {
		t.Skip()
	}
	ck, err := load.Open(testshared.Path(t, "models/pdtext-llama-28m"), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	raw, _ := os.ReadFile(testshared.Path(t, "data/pdtext-val.txt"))
	stream := eval.Stream(ck.Tokenizer, string(raw), "")
	m := ck.Model
	cfg := &m.Config
	L := cfg.NLayers
	K, V := make([][]float64, L), make([][]float64, L)
	r := model.NewRunner(m, 0)
	r.NewCache = func(n int) (model.KVCache, error) {
		c := &expCache{cfg: cfg, C: 64, k: make([][]float32, L), v: make([][]float32, L), lens: make([]int, L)}
		c.quant = func(l, p0 int, k, v []float32) float64 {
			d := cfg.KVDim(l)
			kk := append([]float32(nil), k[:c.C*d]...)
			for tk := 0; tk < c.C; tk++ {
				b := &model.KVBlock{Start: p0 + tk, Len: 1, KVDim: []int{d}, K: [][]float32{kk[tk*d : (tk+1)*d]}, V: [][]float32{nil}}
				model.ShiftKeys(cfg, b, 0)
			}
			for i := range c.C * d {
				K[l] = append(K[l], float64(kk[i]))
				V[l] = append(V[l], float64(v[i]))
			}
			return 0
		}
		return c, nil
	}
	base := eval.Options{Protocol: eval.ProtocolLlamaCpp, Ctx: 512, Windows: 8, BOS: ck.Tokenizer.BOS()}
	if _, err := eval.Evaluate(r, stream, base); err != nil {
		t.Fatal(err)
	}
	d := cfg.KVDim(0)
	n := len(K[0]) / d
	t.Logf("%d tokens", n)
	cat := func(a ...[]float64) ([]float64, int) {
		w := 0
		for _, x := range a {
			w += len(x) / n
		}
		out := make([]float64, 0, n*w)
		for tk := 0; tk < n; tk++ {
			for _, x := range a {
				q := len(x) / n
				out = append(out, x[tk*q:(tk+1)*q]...)
			}
		}
		return out, w
	}
	for l := 0; l < L; l++ {
		if l > 0 {
			X, p := cat(K[l-1], V[l-1])
			gk := predGain(X, p, K[l], d, n)
			X2, p2 := cat(K[l-1], V[l-1], K[l])
			gv := predGain(X2, p2, V[l], d, n)
			fmt.Fprintf(os.Stderr, "layer %d: K from l-1: %.3f bits; V from l-1 and K: %.3f bits\n", l, gk, gv)
		}
		gv := predGain(K[l], d, V[l], d, n)
		fmt.Fprintf(os.Stderr, "layer %d: V from K same layer: %.3f bits\n", l, gv)
	}
}

// fitLS fits Y (n×q) ≈ [X 1] B by ridge least squares; B is (p+1)×q.
func fitLS(X []float64, p int, Y []float64, q int, n int) []float64 {
	p1 := p + 1
	A := make([]float64, p1*p1)
	B := make([]float64, p1*q)
	row := make([]float64, p1)
	for t := 0; t < n; t++ {
		copy(row, X[t*p:(t+1)*p])
		row[p] = 1
		for i := 0; i < p1; i++ {
			ri := row[i]
			for j := 0; j < p1; j++ {
				A[i*p1+j] += ri * row[j]
			}
			for c := 0; c < q; c++ {
				B[i*q+c] += ri * Y[t*q+c]
			}
		}
	}
	var tr float64
	for i := 0; i < p; i++ {
		tr += A[i*p1+i]
	}
	for i := 0; i < p; i++ {
		A[i*p1+i] += 1e-3 * tr / float64(p)
	}
	cholSolve(A, p1, B, q)
	return B
}

// captureKV runs windows of text through m with a recording cache: per
// layer, keys before RoPE and values, token-major.
func captureKV(t *testing.T, m *model.Model, stream []int, bos, windows int) (K, V [][]float64) {
	cfg := &m.Config
	L := cfg.NLayers
	K, V = make([][]float64, L), make([][]float64, L)
	r := model.NewRunner(m, 0)
	r.NewCache = func(n int) (model.KVCache, error) {
		c := &expCache{cfg: cfg, C: 64, k: make([][]float32, L), v: make([][]float32, L), lens: make([]int, L)}
		c.quant = func(l, p0 int, k, v []float32) float64 {
			d := cfg.KVDim(l)
			kk := append([]float32(nil), k[:c.C*d]...)
			unrope(cfg, kk, d, p0, c.C, true)
			for i := range c.C * d {
				K[l] = append(K[l], float64(kk[i]))
				V[l] = append(V[l], float64(v[i]))
			}
			return 0
		}
		return c, nil
	}
	if _, err := eval.Evaluate(r, stream, eval.Options{Protocol: eval.ProtocolLlamaCpp, Ctx: 512, Windows: windows, BOS: bos}); err != nil {
		t.Fatal(err)
	}
	return K, V
}

func unrope(cfg *model.Config, x []float32, d, pos, n int, undo bool) {
	for t := 0; t < n; t++ {
		b := &model.KVBlock{Start: pos + t, Len: 1, KVDim: []int{d}, K: [][]float32{x[t*d : (t+1)*d]}, V: [][]float32{nil}}
		to := 0
		if !undo {
			b.Start, to = 0, pos+t
		}
		model.ShiftKeys(cfg, b, to)
	}
}

// TestCGCross measures cross-layer linear prediction through the meter:
// predictors fitted on pdtext-calib (keys of layer l from layer l−1's
// decoded keys and values; values from the same layer's decoded keys and
// layer l−1's), residuals coded with one step per plane tied to the
// original's RMS. CGCROSS=step,step,... (relative steps, ×2^−offsets of
// KOFF/VOFF per layer); CGCROSS_NOPRED=1 codes without prediction.
func TestCGCross(t *testing.T) {
	if os.Getenv("CGCROSS") == "" {
		t.Skip()
	}
	ck, err := load.Open(testshared.Path(t, "models/pdtext-llama-28m"), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m := ck.Model
	cfg := &m.Config
	L, d, hd := cfg.NLayers, cfg.KVDim(0), cfg.HeadDim
	rawc, _ := os.ReadFile(testshared.Path(t, "data/pdtext-calib.txt"))
	calib := eval.Stream(ck.Tokenizer, string(rawc), "")
	K, V := captureKV(t, m, calib, ck.Tokenizer.BOS(), int(envF("CALWIN", 8)))
	n := len(K[0]) / d
	cat := func(a ...[]float64) ([]float64, int) {
		w := 0
		for _, x := range a {
			w += len(x) / n
		}
		out := make([]float64, 0, n*w)
		for tk := 0; tk < n; tk++ {
			for _, x := range a {
				q := len(x) / n
				out = append(out, x[tk*q:(tk+1)*q]...)
			}
		}
		return out, w
	}
	predK, predV := make([][]float64, L), make([][]float64, L)
	for l := range L {
		if l > 0 {
			X, p := cat(K[l-1], V[l-1])
			predK[l] = fitLS(X, p, K[l], d, n)
			X, p = cat(K[l], K[l-1], V[l-1])
			predV[l] = fitLS(X, p, V[l], d, n)
		} else {
			predV[l] = fitLS(K[0], d, V[0], d, n)
		}
	}
	t.Logf("fitted on %d tokens", n)
	raw, _ := os.ReadFile(testshared.Path(t, "data/pdtext-val.txt"))
	stream := eval.Stream(ck.Tokenizer, string(raw), "")
	nopred := os.Getenv("CGCROSS_NOPRED") != ""
	offs := func(env string) []float64 {
		o := make([]float64, L)
		for l, x := range strings.Split(os.Getenv(env), ":") {
			if l < L {
				o[l], _ = strconv.ParseFloat(x, 64)
			}
		}
		return o
	}
	koff, voff := offs("KOFF"), offs("VOFF")
	for _, ss := range strings.Split(os.Getenv("CGCROSS"), ",") {
		st, _ := strconv.ParseFloat(ss, 64)
		var bitsK, bitsV, el float64
		r := model.NewRunner(m, 0)
		r.NewCache = func(np int) (model.KVCache, error) {
			c := &expCache{cfg: cfg, C: 64, k: make([][]float32, L), v: make([][]float32, L), lens: make([]int, L)}
			pre := make([][]float32, L) // decoded keys before RoPE, per layer (the current chunk)
			buf := make([]int64, 0, 64)
			c.quant = func(l, p0 int, k, v []float32) float64 {
				C := c.C
				unrope(cfg, k, d, p0, C, true)
				feat := func(parts ...[]float32) ([]float64, int) {
					w := 0
					for _, x := range parts {
						w += len(x) / C
					}
					out := make([]float64, 0, C*w)
					for tk := 0; tk < C; tk++ {
						for _, x := range parts {
							q := len(x) / C
							for _, f := range x[tk*q : (tk+1)*q] {
								out = append(out, float64(f))
							}
						}
					}
					return out, w
				}
				code := func(x []float32, B []float64, X []float64, p int, step0 float64, kind int) float64 {
					pred := make([]float64, C*d)
					if B != nil && !nopred {
						for tk := 0; tk < C; tk++ {
							for c2 := 0; c2 < d; c2++ {
								s := B[p*d+c2]
								for i := 0; i < p; i++ {
									s += X[tk*p+i] * B[i*d+c2]
								}
								pred[tk*d+c2] = s
							}
						}
					}
					var bits float64
					res := make([]float32, C)
					for h := 0; h < d/hd; h++ {
						var ss float64
						for ch := 0; ch < hd; ch++ {
							var mu, s2 float64
							for tk := 0; tk < C; tk++ {
								mu += float64(x[tk*d+h*hd+ch])
							}
							mu /= float64(C)
							for tk := 0; tk < C; tk++ {
								e := float64(x[tk*d+h*hd+ch]) - mu
								s2 += e * e
							}
							ss += s2
						}
						step := step0 * math.Sqrt(ss/float64(C*hd))
						for ch := 0; ch < hd; ch++ {
							i0 := h*hd + ch
							for tk := 0; tk < C; tk++ {
								res[tk] = float32(float64(x[tk*d+i0]) - pred[tk*d+i0])
							}
							bits += codeChannel(res, C, 1, step, buf)
							for tk := 0; tk < C; tk++ {
								x[tk*d+i0] = float32(pred[tk*d+i0] + float64(res[tk]))
							}
						}
					}
					if kind == 0 {
						bitsK += bits
					} else {
						bitsV += bits
					}
					return bits
				}
				var bits float64
				if l > 0 {
					X, p := feat(pre[l-1], c.v[l-1][p0*d:(p0+C)*d])
					bits += code(k, predK[l], X, p, st*math.Exp2(-koff[l]), 0)
					pre[l] = append(pre[l][:0], k[:C*d]...)
					X, p = feat(pre[l], pre[l-1], c.v[l-1][p0*d:(p0+C)*d])
					bits += code(v, predV[l], X, p, st*math.Exp2(-voff[l]), 1)
				} else {
					bits += code(k, nil, nil, 0, st*math.Exp2(-koff[l]), 0)
					pre[l] = append(pre[l][:0], k[:C*d]...)
					X, p := feat(pre[l])
					bits += code(v, predV[l], X, p, st*math.Exp2(-voff[l]), 1)
				}
				unrope(cfg, k, d, p0, C, false)
				el += float64(2 * C * d)
				return bits
			}
			return c, nil
		}
		opt := eval.Options{Protocol: eval.ProtocolLlamaCpp, Ctx: 512, Windows: int(envF("WIN", 4)), BOS: ck.Tokenizer.BOS()}
		opt.Base, opt.BaseName = model.NewRunner(m, 0), "f32"
		res, err := eval.Evaluate(r, stream, opt)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "step %g nopred %v: bits %.3f (K %.3f V %.3f)  KLD %.6f\n", st, nopred, (bitsK+bitsV)/el, 2*bitsK/el, 2*bitsV/el, res.KLDMean)
	}
}
