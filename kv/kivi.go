package kv

import (
	"fmt"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
)

// kiviCache is KIVI (Liu et al. 2024): keys quantized per channel over
// groups of g consecutive tokens, values per token over groups of g
// consecutive channels, each group with an asymmetric binary16 scale and
// minimum (x ≈ min + scale·code, codes 0…2^b−1). The newest tokens are
// kept in binary16 in a residual window, as in the paper's Algorithm 1:
// keys accumulate there until R of them are held and are then quantized
// together (so 0…R−1 keys are in full precision); the newest r values stay
// there, and each value is quantized as it leaves the window. R is the
// residual r, or the group g when r is 0.
type kiviCache struct {
	sp                Spec
	cap, hd, g, r, kR int
	kvDim             []int
	lens              []int
	kRowB, vRowB      []int      // bytes of one packed row of codes
	kCode, vCode      [][]byte   // per layer: cap packed rows
	kScale, kMin      [][]uint16 // per layer: [group][channel]
	vScale, vMin      [][]uint16 // per layer: [position][channel group]
	kRes, vRes        [][]uint16 // per layer: binary16 residual rows, slot p mod kR (keys), p mod r (values)
	kLevels, vLevels  int
}

func newKIVICache(cfg *model.Config, positions int, sp *Spec) (*kiviCache, error) {
	g := sp.Group
	if cfg.HeadDim%g != 0 {
		return nil, fmt.Errorf("kv %s: head dimension %d is not a whole number of %d-channel value groups", sp, cfg.HeadDim, g)
	}
	L := cfg.NLayers
	c := &kiviCache{sp: *sp, cap: positions, hd: cfg.HeadDim, g: g, r: sp.Residual, kR: sp.Residual,
		kvDim: make([]int, L), lens: make([]int, L), kRowB: make([]int, L), vRowB: make([]int, L),
		kCode: make([][]byte, L), vCode: make([][]byte, L), kScale: make([][]uint16, L), kMin: make([][]uint16, L),
		vScale: make([][]uint16, L), vMin: make([][]uint16, L), kRes: make([][]uint16, L), vRes: make([][]uint16, L),
		kLevels: 1<<sp.KBits - 1, vLevels: 1<<sp.VBits - 1}
	if c.kR == 0 {
		c.kR = g
	}
	groups := (positions + g - 1) / g
	for l := 0; l < L; l++ {
		d := cfg.KVDim(l)
		c.kvDim[l] = d
		c.kRowB[l], c.vRowB[l] = d*sp.KBits/8, d*sp.VBits/8
		c.kCode[l], c.vCode[l] = make([]byte, positions*c.kRowB[l]), make([]byte, positions*c.vRowB[l])
		c.kScale[l], c.kMin[l] = make([]uint16, groups*d), make([]uint16, groups*d)
		c.vScale[l], c.vMin[l] = make([]uint16, positions*d/g), make([]uint16, positions*d/g)
		c.kRes[l], c.vRes[l] = make([]uint16, c.kR*d), make([]uint16, c.r*d)
	}
	return c, nil
}

// quantized returns how many leading keys and values of a layer holding n
// positions are quantized.
func (c *kiviCache) quantized(n int) (qk, qv int) { return n / c.kR * c.kR, max(0, n-c.r) }

// Append implements model.KVCache.
func (c *kiviCache) Append(layer int, k, v []float32) error {
	if layer < 0 || layer >= len(c.kvDim) {
		return fmt.Errorf("kv %s: layer %d of %d", &c.sp, layer, len(c.kvDim))
	}
	d, pos := c.kvDim[layer], c.lens[layer]
	if len(k) != d || len(v) != d {
		return fmt.Errorf("kv %s: layer %d: key and value of %d and %d floats, want %d", &c.sp, layer, len(k), len(v), d)
	}
	if pos >= c.cap {
		return fmt.Errorf("kv %s: layer %d: position %d outside capacity %d", &c.sp, layer, pos, c.cap)
	}
	toF16(c.kRes[layer][pos%c.kR*d:(pos%c.kR+1)*d], k)
	if (pos+1)%c.kR == 0 {
		for p0 := pos + 1 - c.kR; p0 <= pos; p0 += c.g {
			c.quantKeys(layer, p0)
		}
	}
	if c.r == 0 {
		c.quantValue(layer, pos, v, nil)
	} else {
		slot := c.vRes[layer][pos%c.r*d : (pos%c.r+1)*d]
		if pos >= c.r { // position pos−r leaves the window (its slot is pos mod r)
			c.quantValue(layer, pos-c.r, nil, slot)
		}
		toF16(slot, v)
	}
	c.lens[layer]++
	return nil
}

// quantKeys quantizes the g keys from position p0 (a group start) out of
// the residual, per channel.
func (c *kiviCache) quantKeys(layer, p0 int) {
	d, b, rb := c.kvDim[layer], c.sp.KBits, c.kRowB[layer]
	G := p0 / c.g
	res := c.kRes[layer]
	for ch := 0; ch < d; ch++ {
		lo, hi := float32(0), float32(0)
		for t := 0; t < c.g; t++ {
			x := tensor.F16ToF32(res[(p0+t)%c.kR*d+ch])
			if t == 0 || x < lo {
				lo = x
			}
			if t == 0 || x > hi {
				hi = x
			}
		}
		sc, mn := groupParams(lo, hi, c.kLevels)
		c.kScale[layer][G*d+ch], c.kMin[layer][G*d+ch] = sc, mn
		s, m := tensor.F16ToF32(sc), tensor.F16ToF32(mn)
		for t := 0; t < c.g; t++ {
			x := tensor.F16ToF32(res[(p0+t)%c.kR*d+ch])
			putCode(c.kCode[layer][(p0+t)*rb:], ch, b, code(x, s, m, c.kLevels))
		}
	}
}

// quantValue quantizes the value of position p, from v (float32) or res
// (binary16), per group of g channels.
func (c *kiviCache) quantValue(layer, p int, v []float32, res []uint16) {
	d, b := c.kvDim[layer], c.sp.VBits
	row := c.vCode[layer][p*c.vRowB[layer]:]
	clear(row[:c.vRowB[layer]])
	x := func(ch int) float32 {
		if v != nil {
			return tensor.F16ToF32(tensor.F32ToF16(v[ch])) // as if held in the residual first
		}
		return tensor.F16ToF32(res[ch])
	}
	ng := d / c.g
	for j := 0; j < ng; j++ {
		lo, hi := x(j*c.g), x(j*c.g)
		for ch := j * c.g; ch < (j+1)*c.g; ch++ {
			lo, hi = min(lo, x(ch)), max(hi, x(ch))
		}
		sc, mn := groupParams(lo, hi, c.vLevels)
		c.vScale[layer][p*ng+j], c.vMin[layer][p*ng+j] = sc, mn
		s, m := tensor.F16ToF32(sc), tensor.F16ToF32(mn)
		for ch := j * c.g; ch < (j+1)*c.g; ch++ {
			putCode(row, ch, b, code(x(ch), s, m, c.vLevels))
		}
	}
}

// groupParams is a group's binary16 scale and minimum for values in
// [lo, hi] and codes 0…levels.
func groupParams(lo, hi float32, levels int) (scale, mn uint16) {
	return tensor.F32ToF16((hi - lo) / float32(levels)), tensor.F32ToF16(lo)
}

// code is x's code under scale s and minimum m: round((x−m)/s) clamped to
// 0…levels (0 where s is 0).
func code(x, s, m float32, levels int) int {
	if s == 0 {
		return 0
	}
	q := int((x-m)/s + 0.5)
	return max(0, min(levels, q))
}

// putCode sets code ch of a packed row of b-bit codes (8/b codes a byte,
// the lowest bits first). The row's bits must be clear or hold an older
// code of the same position (it is overwritten).
func putCode(row []byte, ch, b, q int) {
	per := 8 / b
	sh := uint(ch%per*b) & 7
	mask := byte(1<<b-1) << sh
	row[ch/per] = row[ch/per]&^mask | byte(q)<<sh
}

// getCode is code ch of a packed row of b-bit codes.
func getCode(row []byte, ch, b int) int {
	per := 8 / b
	return int(row[ch/per]>>(uint(ch%per*b)&7)) & (1<<b - 1)
}

func toF16(dst []uint16, src []float32) {
	for i, x := range src {
		dst[i] = tensor.F32ToF16(x)
	}
}

func fromF16(dst []float32, src []uint16) {
	for i, h := range src[:len(dst)] {
		dst[i] = tensor.F16ToF32(h)
	}
}

func (c *kiviCache) check(layer, head, n int) error {
	if layer < 0 || layer >= len(c.kvDim) {
		return fmt.Errorf("kv %s: layer %d of %d", &c.sp, layer, len(c.kvDim))
	}
	if head < 0 || (head+1)*c.hd > c.kvDim[layer] {
		return fmt.Errorf("kv %s: layer %d: KV head %d of %d", &c.sp, layer, head, c.kvDim[layer]/c.hd)
	}
	if n < 0 || n > c.lens[layer] {
		return fmt.Errorf("kv %s: layer %d: %d positions asked for, %d held", &c.sp, layer, n, c.lens[layer])
	}
	return nil
}

// Scores implements model.KVCache on the quantized keys: per group, the
// query is scaled channel by channel (q_c·scale_c) and its dot with the
// minimums taken once, so each key costs one pass over its codes.
func (c *kiviCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
	if err := c.check(layer, head, n); err != nil {
		return err
	}
	if nq > 0 && (len(q) < (nq-1)*qs+c.hd || len(dst) < (nq-1)*ds+n) {
		return fmt.Errorf("kv %s: layer %d: %d queries: buffers too small", &c.sp, layer, nq)
	}
	if len(scratch) < c.ScratchSize() {
		return fmt.Errorf("kv %s: scratch of %d floats, want %d", &c.sp, len(scratch), c.ScratchSize())
	}
	d, b, rb := c.kvDim[layer], c.sp.KBits, c.kRowB[layer]
	qk, _ := c.quantized(c.lens[layer])
	nk := min(n, qk)
	c0 := head * c.hd
	qsc, key := scratch[:c.hd], scratch[c.hd:2*c.hd]
	for i := 0; i < nq; i++ {
		qi, row := q[i*qs:i*qs+c.hd], dst[i*ds:i*ds+n]
		for G := 0; G*c.g < nk; G++ {
			sc, mn := c.kScale[layer][G*d+c0:], c.kMin[layer][G*d+c0:]
			var base float32
			for ch, x := range qi {
				qsc[ch] = x * tensor.F16ToF32(sc[ch])
				base += x * tensor.F16ToF32(mn[ch])
			}
			for p := G * c.g; p < min(nk, (G+1)*c.g); p++ {
				row[p] = scale * (base + dotCodes(qsc, c.kCode[layer][p*rb:], c0, b))
			}
		}
		for p := nk; p < n; p++ {
			fromF16(key, c.kRes[layer][p%c.kR*d+c0:])
			row[p] = scale * kernel.Dot(qi, key)
		}
	}
	return nil
}

// dotCodes is Σ_c w[c]·code(c0+c) over a packed row of b-bit codes.
func dotCodes(w []float32, row []byte, c0, b int) float32 {
	var s float32
	switch b {
	case 2:
		r := row[c0/4:]
		for j := 0; j+4 <= len(w); j += 4 {
			x := r[j/4]
			s += w[j]*float32(x&3) + w[j+1]*float32(x>>2&3) + w[j+2]*float32(x>>4&3) + w[j+3]*float32(x>>6)
		}
	case 4:
		r := row[c0/2:]
		for j := 0; j+2 <= len(w); j += 2 {
			x := r[j/2]
			s += w[j]*float32(x&15) + w[j+1]*float32(x>>4)
		}
	default:
		r := row[c0:]
		for j, x := range w {
			s += x * float32(r[j])
		}
	}
	return s
}

// WeightedSum implements model.KVCache, dequantizing each value group as
// it is summed: Σ w·(min + scale·code) = Σ w·min + Σ (w·scale)·code.
func (c *kiviCache) WeightedSum(layer, head int, w, dst []float32, scratch []float32) error {
	if err := c.check(layer, head, len(w)); err != nil {
		return err
	}
	if len(dst) != c.hd {
		return fmt.Errorf("kv %s: layer %d: output of %d floats for head_dim %d", &c.sp, layer, len(dst), c.hd)
	}
	if len(scratch) < c.ScratchSize() {
		return fmt.Errorf("kv %s: scratch of %d floats, want %d", &c.sp, len(scratch), c.ScratchSize())
	}
	d, b, rb := c.kvDim[layer], c.sp.VBits, c.vRowB[layer]
	_, qv := c.quantized(c.lens[layer])
	nv := min(len(w), qv)
	c0, ng := head*c.hd, d/c.g
	clear(dst)
	for p := 0; p < nv; p++ {
		wp := w[p]
		if wp == 0 {
			continue
		}
		row := c.vCode[layer][p*rb:]
		for j := c0 / c.g; j < (c0+c.hd)/c.g; j++ {
			ws := wp * tensor.F16ToF32(c.vScale[layer][p*ng+j])
			wm := wp * tensor.F16ToF32(c.vMin[layer][p*ng+j])
			out := dst[j*c.g-c0 : (j+1)*c.g-c0]
			for ch := range out {
				out[ch] += wm + ws*float32(getCode(row, j*c.g+ch, b))
			}
		}
	}
	val := scratch[:c.hd]
	for p := nv; p < len(w); p++ {
		fromF16(val, c.vRes[layer][p%c.r*d+c0:])
		kernel.Axpy(w[p], val, dst)
	}
	return nil
}

// Truncate implements model.KVCache. Positions that stay but were
// quantized as part of a group now reaching past n return to the residual
// window in their dequantized form.
func (c *kiviCache) Truncate(n int) error {
	if n < 0 || n > c.Len() {
		return fmt.Errorf("kv %s: truncate to %d of %d positions", &c.sp, n, c.Len())
	}
	for l, old := range c.lens {
		if n >= old {
			continue
		}
		d := c.kvDim[l]
		oqk, oqv := c.quantized(old)
		nqk, nqv := c.quantized(n)
		row := make([]float32, d)
		for p := nqk; p < min(n, oqk); p++ {
			c.keyRow(l, p, row)
			toF16(c.kRes[l][p%c.kR*d:(p%c.kR+1)*d], row)
		}
		for p := nqv; p < min(n, oqv); p++ {
			c.valueRow(l, p, row)
			toF16(c.vRes[l][p%c.r*d:(p%c.r+1)*d], row)
		}
		c.lens[l] = n
	}
	return nil
}

// keyRow dequantizes the quantized key of position p (all channels).
func (c *kiviCache) keyRow(layer, p int, dst []float32) {
	d, G := c.kvDim[layer], p/c.g
	row := c.kCode[layer][p*c.kRowB[layer]:]
	for ch := range dst {
		dst[ch] = tensor.F16ToF32(c.kMin[layer][G*d+ch]) + tensor.F16ToF32(c.kScale[layer][G*d+ch])*float32(getCode(row, ch, c.sp.KBits))
	}
}

// valueRow dequantizes the quantized value of position p.
func (c *kiviCache) valueRow(layer, p int, dst []float32) {
	ng := c.kvDim[layer] / c.g
	row := c.vCode[layer][p*c.vRowB[layer]:]
	for ch := range dst {
		j := p*ng + ch/c.g
		dst[ch] = tensor.F16ToF32(c.vMin[layer][j]) + tensor.F16ToF32(c.vScale[layer][j])*float32(getCode(row, ch, c.sp.VBits))
	}
}

// Len implements model.KVCache.
func (c *kiviCache) Len() int { return minLen(c.lens) }

// Cap implements model.KVCache.
func (c *kiviCache) Cap() int { return c.cap }

// ScratchSize implements model.KVCache: a scaled query and one key or value
// row in float32.
func (c *kiviCache) ScratchSize() int { return 2 * c.hd }

// Bytes implements model.KVCache: codes, scales and minimums for the whole
// capacity plus the binary16 residual windows.
func (c *kiviCache) Bytes() int64 {
	var n int64
	for l := range c.kvDim {
		n += int64(len(c.kCode[l]) + len(c.vCode[l]))
		n += 2 * int64(len(c.kScale[l])+len(c.kMin[l])+len(c.vScale[l])+len(c.vMin[l])+len(c.kRes[l])+len(c.vRes[l]))
	}
	return n
}

// dequant returns the first n keys and values of KV head head of layer as
// the cache holds them, for tests.
func (c *kiviCache) dequant(layer, head, n int) (k, v [][]float32) {
	d, c0 := c.kvDim[layer], head*c.hd
	qk, qv := c.quantized(c.lens[layer])
	full := make([]float32, d)
	for p := 0; p < n; p++ {
		kr, vr := make([]float32, c.hd), make([]float32, c.hd)
		if p < qk {
			c.keyRow(layer, p, full)
			copy(kr, full[c0:])
		} else {
			fromF16(kr, c.kRes[layer][p%c.kR*d+c0:])
		}
		if p < qv {
			c.valueRow(layer, p, full)
			copy(vr, full[c0:])
		} else {
			fromF16(vr, c.vRes[layer][p%c.r*d+c0:])
		}
		k, v = append(k, kr), append(v, vr)
	}
	return k, v
}
