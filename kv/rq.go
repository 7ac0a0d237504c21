package kv

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
)

// rq defaults: 3-bit keys, 3-bit values, no binary16 sinks (on
// pdtext-llama-28m keeping BOS whole changes nothing measurable), rows
// rotated.
const (
	DefaultRQBits  = 3
	DefaultRQSinks = 0
)

// lloydMax is the Lloyd–Max quantizer of the standard normal distribution
// with 2^bits levels: the levels (reconstruction points, ascending) and the
// thresholds between neighbouring levels (their midpoints), the codebook
// that minimizes the mean squared error of a unit Gaussian.
type lloydMax struct {
	level, thr []float32
}

var (
	lmOnce  [9]sync.Once
	lmBooks [9]lloydMax // by bits, 1…8
)

// lmBook is the Lloyd–Max codebook of bits bits (1…8), fitted on first
// use.
func lmBook(bits int) *lloydMax {
	lmOnce[bits].Do(func() {
		lv := lloydMaxLevels(bits)
		lm := lloydMax{level: make([]float32, len(lv)), thr: make([]float32, len(lv)-1)}
		for i, x := range lv {
			lm.level[i] = float32(x)
		}
		for i := range lm.thr {
			lm.thr[i] = float32((lv[i] + lv[i+1]) / 2)
		}
		lmBooks[bits] = lm
	})
	return &lmBooks[bits]
}

// lloydMaxLevels runs Lloyd's iteration on the standard normal density
// for 2^bits levels: thresholds at the midpoints of neighbouring levels,
// each level the conditional mean of its cell, E[X | a < X < b] =
// (φ(a)−φ(b))/(Φ(b)−Φ(a)). The levels are symmetric about 0.
func lloydMaxLevels(bits int) []float64 {
	n := 1 << bits
	lv := make([]float64, n)
	for i := range lv { // start from a uniform quantizer over ±3σ
		lv[i] = -3 + 6*(float64(i)+0.5)/float64(n)
	}
	pdf := func(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) }
	cdf := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	next := make([]float64, n)
	for it := 0; it < 5000; it++ {
		moved := 0.0
		for i := range lv {
			a, b := math.Inf(-1), math.Inf(1)
			if i > 0 {
				a = (lv[i-1] + lv[i]) / 2
			}
			if i < n-1 {
				b = (lv[i] + lv[i+1]) / 2
			}
			pa, pb := 0.0, 0.0
			if !math.IsInf(a, 0) {
				pa = pdf(a)
			}
			if !math.IsInf(b, 0) {
				pb = pdf(b)
			}
			next[i] = (pa - pb) / (cdf(b) - cdf(a))
			moved = max(moved, math.Abs(next[i]-lv[i]))
		}
		lv, next = next, lv
		if moved < 1e-10 {
			break
		}
	}
	for i := 0; i < n/2; i++ { // exact symmetry
		m := (lv[n-1-i] - lv[i]) / 2
		lv[i], lv[n-1-i] = -m, m
	}
	return lv
}

// index is the code of x in the codebook: the level nearest x.
func (lm *lloydMax) index(x float32) int {
	lo, hi := 0, len(lm.thr) // first threshold above x
	for lo < hi {
		m := (lo + hi) / 2
		if x > lm.thr[m] {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// rqFmt is how an rq cache stores one head's (rotated) key or value row:
// bits 16 is binary16; otherwise a one-byte logarithmic scale s (rqScale)
// followed by one Lloyd–Max code per channel (x_i ≈ s·level[code_i]),
// channels [0, nHi) of hi bits and the rest of lo bits, stored as bit
// planes (kernel.WidenPlanes's layout): bit b < lo of channel i's code at
// bit b·hd+i after the scale byte, bit lo of the hi channels at bit
// lo·hd+i. A fractional rate b is held as nHi = round((b−⌊b⌋)·hd)
// channels of ⌈b⌉ bits and the rest of ⌊b⌋; after the rotation every
// channel carries the same variance, so which channels get the extra bit
// does not matter.
type rqFmt struct{ hi, lo, nHi int }

// newRQFmt is the format of rate bits (1…8, or 16) over hd channels.
func newRQFmt(bits float64, hd int) rqFmt {
	if bits == 16 {
		return rqFmt{hi: 16, lo: 16, nHi: hd}
	}
	lo := int(math.Floor(bits))
	n := int(math.Round((bits - float64(lo)) * float64(hd)))
	if n == 0 {
		return rqFmt{hi: lo, lo: lo}
	}
	if n == hd {
		return rqFmt{hi: lo + 1, lo: lo + 1, nHi: hd}
	}
	return rqFmt{hi: lo + 1, lo: lo, nHi: n}
}

// bits is channel i's bit width.
func (f rqFmt) bits(i int) int {
	if i < f.nHi {
		return f.hi
	}
	return f.lo
}

// bytes is the size of one row of hd channels.
func (f rqFmt) bytes(hd int) int {
	if f.hi == 16 {
		return 2 * hd
	}
	return 1 + (f.nHi*f.hi+(hd-f.nHi)*f.lo+7)/8
}

// rqScale is the scale a one-byte scale code e stands for: 0 for e = 0,
// else 2^((e−128)/8), from about 1.7e-5 to 5.9e4 in steps of 2^(1/8).
func rqScale(e uint8) float32 { return rqScales[e] }

var rqScales = func() (t [256]float32) {
	for e := 1; e < 256; e++ {
		t[e] = float32(math.Exp2(float64(e-128) / 8))
	}
	return t
}()

// rqScaleCode is the code of the scale nearest s in the logarithm (s > 0).
func rqScaleCode(s float32) int {
	e := int(math.Round(8*math.Log2(float64(s)))) + 128
	return max(1, min(255, e))
}

// codes sets the codes of x under scale s (s > 0) and returns the squared
// error of the reconstruction, and Σ x·level and Σ level² (the least
// squares scale is their ratio).
func (f rqFmt) codes(dst []byte, x []float32, s float32) (se, xc, cc float64) {
	hb, lb := lmBook(f.hi), lmBook(f.lo)
	if dst != nil {
		clear(dst)
	}
	hd := len(x)
	for i, v := range x {
		b, n := lb, f.lo
		if i < f.nHi {
			b, n = hb, f.hi
		}
		j := b.index(v / s)
		c := b.level[j]
		d := float64(v) - float64(s)*float64(c)
		se += d * d
		xc += float64(v) * float64(c)
		cc += float64(c) * float64(c)
		if dst != nil {
			for k := 0; k < n; k++ {
				pos := k*hd + i
				dst[pos>>3] |= byte(j>>k&1) << (pos & 7)
			}
		}
	}
	return se, xc, cc
}

// quant stores x into dst (bytes(len(x)) bytes, which it overwrites).
// The scale starts at x's root mean square (the codebook is for a unit
// Gaussian) and is refitted by least squares to the codes it gives; of the
// scale codes next to that fit, the one whose codes reconstruct x with the
// least squared error is kept.
func (f rqFmt) quant(dst []byte, x []float32) {
	if f.hi == 16 {
		putF16Row(dst, x)
		return
	}
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	dst[0] = 0
	if ss == 0 || math.IsInf(ss, 0) || math.IsNaN(ss) {
		clear(dst[1:])
		return
	}
	s := float32(math.Sqrt(ss / float64(len(x))))
	if _, xc, cc := f.codes(nil, x, s); xc > 0 {
		s = float32(xc / cc)
	}
	e0 := rqScaleCode(s)
	best, bestE := math.Inf(1), e0
	for e := max(1, e0-1); e <= min(255, e0+1); e++ {
		if se, _, _ := f.codes(nil, x, rqScale(uint8(e))); se < best {
			best, bestE = se, e
		}
	}
	dst[0] = uint8(bestE)
	f.codes(dst[1:], x, rqScale(uint8(bestE)))
}

// dequant widens a row stored in format f into dst (hd channels).
func (f rqFmt) dequant(dst []float32, src []byte) {
	if f.hi == 16 {
		for i := range dst {
			dst[i] = f16At(src, i)
		}
		return
	}
	s := rqScale(src[0])
	codes, hd := src[1:], len(dst)
	hb, lb := lmBook(f.hi).level, lmBook(f.lo).level
	for i := range dst {
		n, lv := f.lo, lb
		if i < f.nHi {
			n, lv = f.hi, hb
		}
		j := 0
		for k := 0; k < n; k++ {
			pos := k*hd + i
			j |= int(codes[pos>>3]>>(pos&7)&1) << k
		}
		dst[i] = s * lv[j]
	}
}

// planes is f as kernel.WidenPlanes takes it: the bits every channel has,
// how many channels have one more, and the level tables.
func (f rqFmt) planes() (lo, nHi int, loTab, hiTab []float32) {
	lo, loTab = f.lo, lmBook(f.lo).level
	if f.hi != f.lo {
		nHi, hiTab = f.nHi, lmBook(f.hi).level
	}
	return lo, nHi, loTab, hiTab
}

// widen widens the n rows of format f that follow each other rb bytes
// apart from src (which extends kernel.PlaneReadBytes past the last row's
// start) into dst, hd channels each.
func (f rqFmt) widen(dst []float32, hd int, src []byte, rb int) {
	if f.hi == 16 {
		kernel.F16ToF32Row(dst, src[:len(dst)*2])
		return
	}
	lo, nHi, loTab, hiTab := f.planes()
	kernel.WidenPlanes(dst, hd, src, rb, lo, nHi, loTab, hiTab, &rqScales)
}

// readSlack is how many bytes past its last row a layer's store of rows of
// format f holds, so that kernel.WidenPlanes may read whole 16-channel
// groups of the last row's extra plane.
func (f rqFmt) readSlack(hd int) int {
	if f.hi == 16 {
		return 0
	}
	lo, nHi, _, _ := f.planes()
	return kernel.PlaneReadBytes(hd, lo, nHi) - kernel.PlaneRowBytes(hd, lo, nHi)
}

// widenKeys and widenVals widen KV head h's key or value rows at
// positions [p0, p0+k) of a layer into dst as stored (rotated; keys
// without their mean): sink rows one by one, the rest in one pass.
func (c *rqCache) widenKeys(layer, h, p0, k int, dst []float32) {
	c.widenRows(c.k[layer], c.kf[layer], c.rowK[layer], layer, h, p0, k, dst, c.keyRow)
}

func (c *rqCache) widenVals(layer, h, p0, k int, dst []float32) {
	c.widenRows(c.v[layer], c.vf[layer], c.rowV[layer], layer, h, p0, k, dst, c.valRow)
}

// dotKeys sets dst[p] = q·(KV head h's stored key at p) for the len(dst)
// first positions of a layer (rotated space, keys without their mean),
// straight off the codes; tmp holds one widened sink row.
func (c *rqCache) dotKeys(layer, h int, q, dst, tmp []float32) {
	s := min(c.sinks, len(dst))
	for p := 0; p < s; p++ {
		row, sf := c.keyRow(layer, h, p)
		sf.dequant(tmp, row)
		var d float32
		for i, x := range tmp {
			d += q[i] * x
		}
		dst[p] = d
	}
	if s == len(dst) {
		return
	}
	f, rb := c.kf[layer], c.rowK[layer]
	lo, nHi, loTab, hiTab := f.planes()
	off := h * (c.cap - c.sinks) * rb
	kernel.DotPlanes(dst[s:], q, c.k[layer][off:], rb, lo, nHi, loTab, hiTab, &rqScales)
}

func (c *rqCache) widenRows(store []byte, f rqFmt, rb, layer, h, p0, k int, dst []float32, row func(layer, h, p int) ([]byte, rqFmt)) {
	hd, p := c.hd, p0
	for ; p < min(c.sinks, p0+k); p++ {
		r, sf := row(layer, h, p)
		sf.dequant(dst[(p-p0)*hd:(p-p0+1)*hd], r)
	}
	if p == p0+k {
		return
	}
	off := (h*(c.cap-c.sinks) + p - c.sinks) * rb
	f.widen(dst[(p-p0)*hd:k*hd], hd, store[off:], rb)
}

// rqCache stores each KV head's key and value rows rotated by a
// randomized Walsh–Hadamard transform (rotation) and quantized row by row
// with one logarithmic scale and Lloyd–Max codes (rqFmt), at bits that may differ
// between keys and values and from layer to layer. The rotation makes a
// row's channels near-Gaussian with equal variance (an outlier channel's
// energy is spread over all of them), which is what the Gaussian codebook
// and a single scale per row need; scores are taken against the rotated
// keys with the query rotated once per call, and values are summed in the
// rotated space and the sum rotated back once. The first sinks positions
// are kept in binary16 (rotated too). A row's scale costs one byte (a
// power of 2^(1/8)), so a 64-channel head pays 0.125 bits per element
// for it.
type rqCache struct {
	name         string
	cap, hd      int
	sinks        int
	kf, vf       []rqFmt // per layer
	rot          *rotation
	kvDim, lens  []int
	k, v         [][]byte // per layer: heads × (cap−sinks) rows
	sk, sv       [][]byte // per layer: heads × sinks binary16 rows
	tmpK, tmpV   []float32
	sinkF        rqFmt
	rowK, rowV   []int // per layer: bytes of a key and a value row
	sinkRowBytes int
	// mean, when the key mean is removed: per layer, heads × len(rqEpochs)
	// rotated mean keys (binary16-rounded); mean e is subtracted from
	// the keys of positions from rqEpochs[e] on.
	mean [][]float32
}

// rqEpochs are the positions from which an rq cache with key-mean removal
// subtracts a new mean key: the mean of the keys it holds before that
// position (as stored, so a truncated and refilled cache holds the same
// means as a fresh one). Keys of earlier positions are stored whole.
var rqEpochs = []int{32, 128}

// epoch is the mean position p's key is stored against, or −1.
func (c *rqCache) epoch(p int) int {
	if c.mean == nil || p < c.sinks {
		return -1
	}
	e := -1
	for i, b := range rqEpochs {
		if p >= b {
			e = i
		}
	}
	return e
}

// meanKey is KV head h's mean e of a layer (rotated).
func (c *rqCache) meanKey(layer, h, e int) []float32 {
	off := (h*len(rqEpochs) + e) * c.hd
	return c.mean[layer][off : off+c.hd]
}

// fitMean sets mean e of every KV head of a layer to the mean of the
// stored keys of the positions before rqEpochs[e].
func (c *rqCache) fitMean(layer, e int) {
	n := rqEpochs[e]
	from := max(1, c.sinks) // not BOS (nor the sinks): its key is an outlier
	acc := make([]float64, c.hd)
	for h := 0; h < c.kvDim[layer]/c.hd; h++ {
		clear(acc)
		for p := from; p < n; p++ {
			c.rotatedKey(layer, h, p, c.tmpK)
			for i, x := range c.tmpK {
				acc[i] += float64(x)
			}
		}
		m := c.meanKey(layer, h, e)
		for i, x := range acc {
			m[i] = f16Round(float32(x / float64(n-from)))
		}
	}
}

// rotatedKey widens KV head h's key at position p of a layer in the
// rotated space, its mean added back.
func (c *rqCache) rotatedKey(layer, h, p int, dst []float32) {
	row, f := c.keyRow(layer, h, p)
	f.dequant(dst, row)
	if e := c.epoch(p); e >= 0 {
		for i, x := range c.meanKey(layer, h, e) {
			dst[i] += x
		}
	}
}

func newRQCache(cfg *model.Config, positions int, sp *Spec) (*rqCache, error) {
	hd := cfg.HeadDim
	name := sp.String()
	if hd > 256 {
		return nil, fmt.Errorf("kv %s: head dimension %d above 256", name, hd)
	}
	kb, err := perLayer(sp.RQKBits, cfg.NLayers)
	if err != nil {
		return nil, fmt.Errorf("kv %s: key bits: %w", name, err)
	}
	vb, err := perLayer(sp.RQVBits, cfg.NLayers)
	if err != nil {
		return nil, fmt.Errorf("kv %s: value bits: %w", name, err)
	}
	s := min(sp.TQSinks, positions)
	c := &rqCache{name: name, cap: positions, hd: hd, sinks: s, kvDim: make([]int, cfg.NLayers), lens: make([]int, cfg.NLayers),
		kf: make([]rqFmt, cfg.NLayers), vf: make([]rqFmt, cfg.NLayers), rowK: make([]int, cfg.NLayers), rowV: make([]int, cfg.NLayers),
		k: make([][]byte, cfg.NLayers), v: make([][]byte, cfg.NLayers), sk: make([][]byte, cfg.NLayers), sv: make([][]byte, cfg.NLayers),
		tmpK: make([]float32, hd), tmpV: make([]float32, hd), sinkF: rqFmt{hi: 16, lo: 16, nHi: hd}, sinkRowBytes: 2 * hd}
	if sp.Rotate {
		if c.rot = newRotation(hd); c.rot == nil {
			return nil, fmt.Errorf("kv %s: rotation needs a power-of-two head dimension, not %d", name, hd)
		}
	}
	for l := range c.k {
		c.kvDim[l] = cfg.KVDim(l)
		heads := c.kvDim[l] / hd
		c.kf[l], c.vf[l] = newRQFmt(kb[l], hd), newRQFmt(vb[l], hd)
		c.rowK[l], c.rowV[l] = c.kf[l].bytes(hd), c.vf[l].bytes(hd)
		c.k[l] = make([]byte, heads*(positions-s)*c.rowK[l]+c.kf[l].readSlack(hd))
		c.v[l] = make([]byte, heads*(positions-s)*c.rowV[l]+c.vf[l].readSlack(hd))
		c.sk[l] = make([]byte, heads*s*c.sinkRowBytes)
		c.sv[l] = make([]byte, heads*s*c.sinkRowBytes)
	}
	if sp.RQMean {
		c.mean = make([][]float32, cfg.NLayers)
		for l := range c.mean {
			c.mean[l] = make([]float32, c.kvDim[l]/hd*len(rqEpochs)*hd)
		}
	}
	return c, nil
}

// perLayer spreads one rate over every layer, or checks a list has one
// per layer.
func perLayer(bits []float64, layers int) ([]float64, error) {
	if len(bits) == 1 {
		out := make([]float64, layers)
		for i := range out {
			out[i] = bits[0]
		}
		return out, nil
	}
	if len(bits) != layers {
		return nil, fmt.Errorf("%d rates for %d layers (give one, or one per layer)", len(bits), layers)
	}
	return bits, nil
}

// keyRow and valRow are KV head h's stored rows at position p of a layer
// and their format.
func (c *rqCache) keyRow(layer, h, p int) ([]byte, rqFmt) {
	if p < c.sinks {
		off := (h*c.sinks + p) * c.sinkRowBytes
		return c.sk[layer][off : off+c.sinkRowBytes], c.sinkF
	}
	b := c.rowK[layer]
	off := (h*(c.cap-c.sinks) + p - c.sinks) * b
	return c.k[layer][off : off+b], c.kf[layer]
}

func (c *rqCache) valRow(layer, h, p int) ([]byte, rqFmt) {
	if p < c.sinks {
		off := (h*c.sinks + p) * c.sinkRowBytes
		return c.sv[layer][off : off+c.sinkRowBytes], c.sinkF
	}
	b := c.rowV[layer]
	off := (h*(c.cap-c.sinks) + p - c.sinks) * b
	return c.v[layer][off : off+b], c.vf[layer]
}

// Append implements model.KVCache.
func (c *rqCache) Append(layer int, k, v []float32) error {
	if layer < 0 || layer >= len(c.kvDim) {
		return fmt.Errorf("kv %s: layer %d of %d", c.name, layer, len(c.kvDim))
	}
	d, pos := c.kvDim[layer], c.lens[layer]
	if len(k) != d || len(v) != d {
		return fmt.Errorf("kv %s: layer %d: key and value of %d and %d floats, want %d", c.name, layer, len(k), len(v), d)
	}
	if pos >= c.cap {
		return fmt.Errorf("kv %s: layer %d: position %d outside capacity %d", c.name, layer, pos, c.cap)
	}
	e := c.epoch(pos)
	if e >= 0 && pos == rqEpochs[e] {
		c.fitMean(layer, e)
	}
	for h := 0; h < d/c.hd; h++ {
		kr, vr := k[h*c.hd:(h+1)*c.hd], v[h*c.hd:(h+1)*c.hd]
		if c.rot != nil {
			c.rot.forward(c.tmpK, kr)
			c.rot.forward(c.tmpV, vr)
			kr, vr = c.tmpK, c.tmpV
		}
		if e >= 0 {
			if c.rot == nil {
				copy(c.tmpK, kr)
				kr = c.tmpK
			}
			for i, x := range c.meanKey(layer, h, e) {
				kr[i] -= x
			}
		}
		dk, fk := c.keyRow(layer, h, pos)
		fk.quant(dk, kr)
		dv, fv := c.valRow(layer, h, pos)
		fv.quant(dv, vr)
	}
	c.lens[layer]++
	return nil
}

func (c *rqCache) check(layer, head, n int) error {
	return checkAccess(&c.name, c.kvDim, c.lens, c.hd, layer, head, n)
}

// Scores implements model.KVCache: the queries are rotated once, and the
// keys are widened a chunk of positions at a time into scratch and scored
// there by kernel.Scores.
func (c *rqCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
	if err := c.check(layer, head, n); err != nil {
		return err
	}
	if nq > 0 && (len(q) < (nq-1)*qs+c.hd || len(dst) < (nq-1)*ds+n) {
		return fmt.Errorf("kv %s: layer %d: %d queries: buffers too small", c.name, layer, nq)
	}
	if len(scratch) < c.ScratchSize() {
		return fmt.Errorf("kv %s: scratch of %d floats, want %d", c.name, len(scratch), c.ScratchSize())
	}
	hd := c.hd
	buf, qr := scratch[:wsChunk*hd], scratch[wsChunk*hd:(wsChunk+tqQueries)*hd]
	for j0 := 0; j0 < nq; j0 += tqQueries {
		m := min(tqQueries, nq-j0)
		for j := 0; j < m; j++ {
			qi, out := q[(j0+j)*qs:(j0+j)*qs+hd], qr[j*hd:(j+1)*hd]
			if c.rot != nil {
				c.rot.forward(out, qi)
			} else {
				copy(out, qi)
			}
		}
		if m == 1 && c.kf[layer].hi != 16 {
			// One query: dots straight off the codes, the scale folded
			// into a copy of the query.
			qs := buf[:hd]
			for i, x := range qr[:hd] {
				qs[i] = scale * x
			}
			c.dotKeys(layer, head, qs, dst[j0*ds:j0*ds+n], buf[hd:2*hd])
		} else {
			for p0 := 0; p0 < n; p0 += wsChunk {
				k := min(wsChunk, n-p0)
				c.widenKeys(layer, head, p0, k, buf)
				kernel.Scores(dst[j0*ds+p0:], ds, qr, hd, m, buf, hd, k, hd, scale)
			}
		}
		if c.mean == nil {
			continue
		}
		// q·(m_e + r) = q·m_e + q·r: each query's dot with a mean is
		// taken once and added to the positions stored against it.
		for e, b := range rqEpochs {
			lo := max(b, c.sinks)
			if lo >= n {
				break
			}
			hi := n
			if e+1 < len(rqEpochs) {
				hi = min(n, rqEpochs[e+1])
			}
			mk := c.meanKey(layer, head, e)
			for j := 0; j < m; j++ {
				var qm float32
				for i, x := range qr[j*hd : (j+1)*hd] {
					qm += x * mk[i]
				}
				qm *= scale
				row := dst[(j0+j)*ds:]
				for p := lo; p < hi; p++ {
					row[p] += qm
				}
			}
		}
	}
	return nil
}

// WeightedSum implements model.KVCache: values are widened a chunk at a
// time, summed in the rotated space, and the sum rotated back.
func (c *rqCache) WeightedSum(layer, head int, w, dst []float32, scratch []float32) error {
	if err := c.check(layer, head, len(w)); err != nil {
		return err
	}
	if len(dst) != c.hd {
		return fmt.Errorf("kv %s: layer %d: output of %d floats for head_dim %d", c.name, layer, len(dst), c.hd)
	}
	if len(scratch) < c.ScratchSize() {
		return fmt.Errorf("kv %s: scratch of %d floats, want %d", c.name, len(scratch), c.ScratchSize())
	}
	hd := c.hd
	buf, acc, part := scratch[:wsChunk*hd], scratch[wsChunk*hd:(wsChunk+1)*hd], scratch[(wsChunk+1)*hd:(wsChunk+2)*hd]
	clear(acc)
	if f := c.vf[layer]; f.hi != 16 {
		// Sums straight off the codes; the binary16 sink rows one by one.
		s := min(c.sinks, len(w))
		for p := 0; p < s; p++ {
			row, sf := c.valRow(layer, head, p)
			sf.dequant(part, row)
			for j, x := range part {
				acc[j] += w[p] * x
			}
		}
		if s < len(w) {
			lo, nHi, loTab, hiTab := f.planes()
			off := head * (c.cap - c.sinks) * c.rowV[layer]
			kernel.AxpyPlanes(acc, w[s:], c.v[layer][off:], c.rowV[layer], lo, nHi, loTab, hiTab, &rqScales)
		}
	} else {
		for p0 := 0; p0 < len(w); p0 += wsChunk {
			k := min(wsChunk, len(w)-p0)
			c.widenVals(layer, head, p0, k, buf)
			kernel.WeightedSum(part, w[p0:p0+k], buf, hd)
			for j, x := range part {
				acc[j] += x
			}
		}
	}
	if c.rot != nil {
		c.rot.inverse(dst, acc)
	} else {
		copy(dst, acc)
	}
	return nil
}

// Truncate implements model.KVCache.
func (c *rqCache) Truncate(n int) error {
	if n < 0 || n > c.Len() {
		return fmt.Errorf("kv %s: truncate to %d of %d positions", c.name, n, c.Len())
	}
	for l := range c.lens {
		c.lens[l] = min(c.lens[l], n)
	}
	return nil
}

// Len implements model.KVCache.
func (c *rqCache) Len() int { return minLen(c.lens) }

// Cap implements model.KVCache.
func (c *rqCache) Cap() int { return c.cap }

// ScratchSize implements model.KVCache: a chunk of widened rows and the
// rotated queries (or the sum and a partial one).
func (c *rqCache) ScratchSize() int { return (wsChunk + tqQueries) * c.hd }

// Bytes implements model.KVCache: every row (codes and scale) for the
// capacity, the binary16 sink rows. The rotation's signs and the
// codebooks are package constants, the same for every cache.
func (c *rqCache) Bytes() int64 {
	var n int64
	for l := range c.k {
		n += int64(len(c.k[l]) + len(c.v[l]) + len(c.sk[l]) + len(c.sv[l]))
		if c.mean != nil {
			n += 2 * int64(len(c.mean[l])) // binary16 values
		}
	}
	return n
}

// row widens KV head h's key and value at position p of a layer as
// attention sees them (rotated back).
func (c *rqCache) row(layer, h, p int, k, v []float32) {
	c.rotatedKey(layer, h, p, k)
	vr, fv := c.valRow(layer, h, p)
	fv.dequant(v, vr)
	if c.rot != nil {
		c.rot.inverse(k, k)
		c.rot.inverse(v, v)
	}
}

// ReadKV implements model.KVReader.
func (c *rqCache) ReadKV(layer, from, to int, k, v []float32) error {
	if err := checkRead(c.name, c.kvDim, c.lens, layer, from, to, k, v); err != nil {
		return err
	}
	readRows(c.kvDim[layer], c.hd, from, to, k, v, func(h, p int, k, v []float32) { c.row(layer, h, p, k, v) })
	return nil
}

// dequant returns the first n keys and values of KV head head of layer as
// the cache holds them, for tests.
func (c *rqCache) dequant(layer, head, n int) (k, v [][]float32) {
	return headRows(c.hd, n, func(p int, k, v []float32) { c.row(layer, head, p, k, v) })
}

// parseRQ reads "[kB][:vB][:sS][:p]" after "rq:": B a rate in bits per
// element (1 to 8, fractions allowed, or 16 for binary16), or one rate per
// layer separated by "/"; v defaults to k's rates.
func parseRQ(s, rest string) (*Spec, error) {
	sp := &Spec{Kind: KindRQ, RQKBits: []float64{DefaultRQBits}, TQSinks: DefaultRQSinks, Rotate: true}
	seen := map[byte]bool{}
	if rest != "" {
		for _, f := range strings.Split(rest, ":") {
			if f == "" {
				return nil, fmt.Errorf("kv spec %q: empty field", s)
			}
			if seen[f[0]] {
				return nil, fmt.Errorf("kv spec %q: field %q given twice", s, f)
			}
			seen[f[0]] = true
			var err error
			switch {
			case f == "p":
				sp.Rotate = false
			case f == "m":
				sp.RQMean = true
			case f[0] == 's':
				sp.TQSinks, err = parseInt(f[1:], 0, 1<<12)
			case f[0] == 'k':
				sp.RQKBits, err = parseRates(f[1:])
			case f[0] == 'v':
				sp.RQVBits, err = parseRates(f[1:])
			default:
				err = fmt.Errorf("unknown field (want kB, vB, sS, m or p)")
			}
			if err != nil {
				return nil, fmt.Errorf("kv spec %q: field %q: %w", s, f, err)
			}
		}
	}
	if sp.RQVBits == nil {
		sp.RQVBits = append([]float64(nil), sp.RQKBits...)
	}
	return sp, nil
}

// parseRates reads "B" or "B1/B2/…": rates of 1 to 8 bits, or 16.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, "/") {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil || !(x == 16 || (x >= 1 && x <= 8)) {
			return nil, fmt.Errorf("%q bits: want 1 to 8 (fractions allowed), or 16", f)
		}
		out = append(out, x)
	}
	if len(out) > 1024 {
		return nil, fmt.Errorf("%d rates: at most 1024 layers", len(out))
	}
	return out, nil
}

// rqString is an rq spec in full.
func rqString(sp *Spec) string {
	rates := func(x []float64) string {
		var b strings.Builder
		for i, r := range x {
			if i > 0 {
				b.WriteByte('/')
			}
			b.WriteString(specNum(r))
		}
		return b.String()
	}
	out := fmt.Sprintf("rq:k%s:v%s:s%d", rates(sp.RQKBits), rates(sp.RQVBits), sp.TQSinks)
	if sp.RQMean {
		out += ":m"
	}
	if !sp.Rotate {
		out += ":p"
	}
	return out
}
