package kv

import (
	"encoding/binary"
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
//
// Codes are packed in kernel's 32-channel block layout (kernel.PutCode),
// which its SIMD dot and axpy kernels read. Every store is laid out head
// by head (all positions of KV head 0, then head 1, …) so that one head's
// positions are contiguous. A residual window longer than the capacity is
// held (and counted) only up to the capacity.
type kiviCache struct {
	sp                Spec
	cap, hd, g, r, kR int
	groups            int // key groups of the capacity
	kSlots, vSlots    int // residual rows held per head: min(kR, cap), min(r, cap)
	kb, vb            int // bits
	kRowB, vRowB      int // bytes of one head's packed codes at one position
	kLevels, vLevels  int
	kvDim, lens       []int
	kCode, vCode      [][]byte  // per layer: heads × cap packed rows
	kScale, kMin      [][]byte  // per layer: heads × groups × hd binary16
	vScale, vMin      [][]byte  // per layer: heads × cap × hd/g binary16
	kRes, vRes        [][]byte  // per layer: heads × kR (keys), heads × r (values) binary16 rows
	tmp               []float32 // Append's and Truncate's working row(s)
}

func newKIVICache(cfg *model.Config, positions int, sp *Spec) (*kiviCache, error) {
	g := sp.Group
	if cfg.HeadDim%kernel.CodeBlock != 0 {
		return nil, fmt.Errorf("kv %s: head dimension %d is not a whole number of %d-channel code blocks", sp, cfg.HeadDim, kernel.CodeBlock)
	}
	if cfg.HeadDim%g != 0 {
		return nil, fmt.Errorf("kv %s: head dimension %d is not a whole number of %d-channel value groups", sp, cfg.HeadDim, g)
	}
	L, hd := cfg.NLayers, cfg.HeadDim
	c := &kiviCache{sp: *sp, cap: positions, hd: hd, g: g, r: sp.Residual, kR: sp.Residual,
		groups: (positions + g - 1) / g, kb: sp.KBits, vb: sp.VBits,
		kRowB: hd * sp.KBits / 8, vRowB: hd * sp.VBits / 8, kLevels: 1<<sp.KBits - 1, vLevels: 1<<sp.VBits - 1,
		kvDim: make([]int, L), lens: make([]int, L),
		kCode: make([][]byte, L), vCode: make([][]byte, L), kScale: make([][]byte, L), kMin: make([][]byte, L),
		vScale: make([][]byte, L), vMin: make([][]byte, L), kRes: make([][]byte, L), vRes: make([][]byte, L)}
	if c.kR == 0 {
		c.kR = g
	}
	c.kSlots, c.vSlots = min(c.kR, positions), min(c.r, positions)
	c.tmp = make([]float32, max(g, 1)*hd)
	for l := 0; l < L; l++ {
		c.kvDim[l] = cfg.KVDim(l)
		heads := c.kvDim[l] / hd
		c.kCode[l], c.vCode[l] = make([]byte, heads*positions*c.kRowB), make([]byte, heads*positions*c.vRowB)
		c.kScale[l], c.kMin[l] = make([]byte, 2*heads*c.groups*hd), make([]byte, 2*heads*c.groups*hd)
		c.vScale[l], c.vMin[l] = make([]byte, 2*heads*positions*hd/g), make([]byte, 2*heads*positions*hd/g)
		c.kRes[l], c.vRes[l] = make([]byte, heads*c.kSlots*hd*2), make([]byte, heads*c.vSlots*hd*2)
	}
	return c, nil
}

// quantized returns how many leading keys and values of a layer holding n
// positions are quantized.
func (c *kiviCache) quantized(n int) (qk, qv int) { return n / c.kR * c.kR, max(0, n-c.r) }

// kSlot and vSlot are the binary16 residual rows of head h's key at
// residual slot s (position mod kR) and value at slot s (position mod r).
func (c *kiviCache) kSlot(layer, h, s int) []byte {
	off := (h*c.kSlots + s) * c.hd * 2
	return c.kRes[layer][off : off+c.hd*2]
}

func (c *kiviCache) vSlot(layer, h, s int) []byte {
	off := (h*c.vSlots + s) * c.hd * 2
	return c.vRes[layer][off : off+c.hd*2]
}

// kCodes and vCodes are head h's packed codes at position p.
func (c *kiviCache) kCodes(layer, h, p int) []byte {
	off := (h*c.cap + p) * c.kRowB
	return c.kCode[layer][off : off+c.kRowB]
}

func (c *kiviCache) vCodes(layer, h, p int) []byte {
	off := (h*c.cap + p) * c.vRowB
	return c.vCode[layer][off : off+c.vRowB]
}

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
	for h := 0; h < d/c.hd; h++ {
		kh, vh := k[h*c.hd:(h+1)*c.hd], v[h*c.hd:(h+1)*c.hd]
		putF16Row(c.kSlot(layer, h, pos%c.kR), kh)
		if (pos+1)%c.kR == 0 {
			for p0 := pos + 1 - c.kR; p0 <= pos; p0 += c.g {
				c.quantKeys(layer, h, p0)
			}
		}
		row := c.tmp[:c.hd]
		if c.r == 0 {
			for i, x := range vh { // as if held in the residual first
				row[i] = tensor.F16ToF32(tensor.F32ToF16(x))
			}
			c.quantValue(layer, h, pos, row)
			continue
		}
		slot := c.vSlot(layer, h, pos%c.r)
		if pos >= c.r { // position pos−r leaves the window; its slot is pos mod r
			kernel.F16ToF32Row(row, slot)
			c.quantValue(layer, h, pos-c.r, row)
		}
		putF16Row(slot, vh)
	}
	c.lens[layer]++
	return nil
}

// quantKeys quantizes head h's g keys from position p0 (a group start)
// out of the residual, per channel.
func (c *kiviCache) quantKeys(layer, h, p0 int) {
	hd, G := c.hd, p0/c.g
	x := c.tmp[:c.g*hd]
	for t := 0; t < c.g; t++ {
		kernel.F16ToF32Row(x[t*hd:(t+1)*hd], c.kSlot(layer, h, (p0+t)%c.kR))
		clear(c.kCodes(layer, h, p0+t))
	}
	sc, mn := c.kScale[layer][2*(h*c.groups+G)*hd:], c.kMin[layer][2*(h*c.groups+G)*hd:]
	for ch := 0; ch < hd; ch++ {
		lo, hi := x[ch], x[ch]
		for t := 1; t < c.g; t++ {
			lo, hi = min(lo, x[t*hd+ch]), max(hi, x[t*hd+ch])
		}
		s, m := groupParams(lo, hi, c.kLevels, sc[2*ch:], mn[2*ch:])
		for t := 0; t < c.g; t++ {
			kernel.PutCode(c.kCodes(layer, h, p0+t), ch, c.kb, code(x[t*hd+ch], s, m, c.kLevels))
		}
	}
}

// quantValue quantizes head h's value x at position p per group of g
// channels.
func (c *kiviCache) quantValue(layer, h, p int, x []float32) {
	row := c.vCodes(layer, h, p)
	clear(row)
	ng := c.hd / c.g
	sc, mn := c.vScale[layer][2*(h*c.cap+p)*ng:], c.vMin[layer][2*(h*c.cap+p)*ng:]
	for j := 0; j < ng; j++ {
		xs := x[j*c.g : (j+1)*c.g]
		lo, hi := xs[0], xs[0]
		for _, v := range xs {
			lo, hi = min(lo, v), max(hi, v)
		}
		s, m := groupParams(lo, hi, c.vLevels, sc[2*j:], mn[2*j:])
		for i, v := range xs {
			kernel.PutCode(row, j*c.g+i, c.vb, code(v, s, m, c.vLevels))
		}
	}
}

// groupParams stores a group's binary16 scale and minimum for values in
// [lo, hi] and codes 0…levels into sc and mn, and returns them widened.
func groupParams(lo, hi float32, levels int, sc, mn []byte) (scale, minimum float32) {
	s, m := tensor.F32ToF16((hi-lo)/float32(levels)), tensor.F32ToF16(lo)
	binary.LittleEndian.PutUint16(sc, s)
	binary.LittleEndian.PutUint16(mn, m)
	return tensor.F16ToF32(s), tensor.F16ToF32(m)
}

// f16At is element i of a binary16 array.
func f16At(b []byte, i int) float32 { return tensor.F16ToF32(binary.LittleEndian.Uint16(b[2*i:])) }

// code is x's code under scale s and minimum m: round((x−m)/s) clamped to
// 0…levels (0 where s is 0).
func code(x, s, m float32, levels int) int {
	if s == 0 {
		return 0
	}
	q := int((x-m)/s + 0.5)
	return max(0, min(levels, q))
}

// putF16Row stores src as binary16 into dst (2 bytes each, little-endian).
func putF16Row(dst []byte, src []float32) {
	for i, x := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], tensor.F32ToF16(x))
	}
}

func (c *kiviCache) check(layer, head, n int) error {
	return checkAccess(&c.sp, c.kvDim, c.lens, c.hd, layer, head, n)
}

// Scores implements model.KVCache on the quantized keys: per group, the
// query is scaled channel by channel (q_c·scale_c) and its dot with the
// minimums taken once, so each key costs one pass over its codes. Keys in
// the residual window are widened a chunk at a time and scored in float32.
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
	if nq <= 0 || n == 0 {
		return nil
	}
	hd := c.hd
	qk, _ := c.quantized(c.lens[layer])
	nk := min(n, qk)
	qsc, buf := scratch[:hd], scratch[hd:hd+wsChunk*hd]
	for i := 0; i < nq; i++ {
		qi, row := q[i*qs:i*qs+hd], dst[i*ds:i*ds+n]
		for G := 0; G*c.g < nk; G++ {
			off := 2 * (head*c.groups + G) * hd
			sc, mn := buf[:hd], buf[hd:2*hd]
			kernel.F16ToF32Row(sc, c.kScale[layer][off:off+2*hd])
			kernel.F16ToF32Row(mn, c.kMin[layer][off:off+2*hd])
			var base float32
			for ch, x := range qi {
				qsc[ch] = x * sc[ch]
				base += x * mn[ch]
			}
			p0, p1 := G*c.g, min(nk, (G+1)*c.g)
			out := row[p0:p1]
			kernel.DotCodesRows(out, qsc, c.kCode[layer][(head*c.cap+p0)*c.kRowB:(head*c.cap+p1)*c.kRowB], c.kb)
			for p, x := range out {
				out[p] = scale * (base + x)
			}
		}
	}
	// Residual keys [nk, n) sit in slots p − qk, contiguous.
	for p0 := nk; p0 < n; p0 += wsChunk {
		m := min(wsChunk, n-p0)
		off := (head*c.kSlots + p0 - qk) * hd * 2
		kernel.F16ToF32Row(buf[:m*hd], c.kRes[layer][off:off+m*hd*2])
		kernel.Scores(dst[p0:], ds, q, qs, nq, buf, hd, m, hd, scale)
	}
	return nil
}

// WeightedSum implements model.KVCache, dequantizing each value group as
// it is summed: Σ w·(min + scale·code) = Σ w·min + Σ (w·scale)·code.
// Values in the residual window are widened a chunk at a time.
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
	hd, ng := c.hd, c.hd/c.g
	_, qv := c.quantized(c.lens[layer])
	nv := min(len(w), qv)
	part, buf := scratch[:hd], scratch[hd:hd+wsChunk*hd]
	clear(dst)
	mins := part[:ng]
	clear(mins)
	sc, mn := c.vScale[layer][2*head*c.cap*ng:], c.vMin[layer][2*head*c.cap*ng:]
	if c.g%kernel.CodeBlock == 0 {
		// One weight per position and 32-channel block, a chunk of
		// positions at a time, through the row kernel.
		k := hd / kernel.CodeBlock
		per := c.g / kernel.CodeBlock
		for p0 := 0; p0 < nv; p0 += wsChunk {
			p1 := min(nv, p0+wsChunk)
			a := buf[:(p1-p0)*k]
			fs := buf[wsChunk*k : wsChunk*k+(p1-p0)*ng]
			fm := buf[wsChunk*(k+ng) : wsChunk*(k+ng)+(p1-p0)*ng]
			kernel.F16ToF32Row(fs, sc[2*p0*ng:2*p1*ng])
			kernel.F16ToF32Row(fm, mn[2*p0*ng:2*p1*ng])
			for p := p0; p < p1; p++ {
				wp := w[p]
				for j := 0; j < ng; j++ {
					mins[j] += wp * fm[(p-p0)*ng+j]
					ws := wp * fs[(p-p0)*ng+j]
					for blk := j * per; blk < (j+1)*per; blk++ {
						a[(p-p0)*k+blk] = ws
					}
				}
			}
			kernel.AxpyCodesRows(dst, a, c.vCode[layer][(head*c.cap+p0)*c.vRowB:(head*c.cap+p1)*c.vRowB], c.vb)
		}
	} else {
		for p := 0; p < nv; p++ {
			wp := w[p]
			row := c.vCodes(layer, head, p)
			for j := 0; j < ng; j++ {
				mins[j] += wp * f16At(mn, p*ng+j)
				a := wp * f16At(sc, p*ng+j)
				for ch := j * c.g; ch < (j+1)*c.g; ch++ {
					dst[ch] += a * float32(kernel.Code(row, ch, c.vb))
				}
			}
		}
	}
	for ch := range dst {
		dst[ch] += mins[ch/c.g]
	}
	// Residual values [nv, len(w)) sit in slots p mod r: at most two runs.
	for p0 := nv; p0 < len(w); {
		s := p0 % c.r
		m := min(wsChunk, len(w)-p0, c.r-s)
		off := (head*c.vSlots + s) * hd * 2
		kernel.F16ToF32Row(buf[:m*hd], c.vRes[layer][off:off+m*hd*2])
		kernel.WeightedSum(part, w[p0:p0+m], buf, hd)
		for ch, x := range part {
			dst[ch] += x
		}
		p0 += m
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
	row := c.tmp[:c.hd]
	for l, old := range c.lens {
		if n >= old {
			continue
		}
		oqk, oqv := c.quantized(old)
		nqk, nqv := c.quantized(n)
		for h := 0; h < c.kvDim[l]/c.hd; h++ {
			for p := nqk; p < min(n, oqk); p++ {
				c.keyRow(l, h, p, row)
				putF16Row(c.kSlot(l, h, p%c.kR), row)
			}
			for p := nqv; p < min(n, oqv); p++ {
				c.valueRow(l, h, p, row)
				putF16Row(c.vSlot(l, h, p%c.r), row)
			}
		}
		c.lens[l] = n
	}
	return nil
}

// keyRow dequantizes head h's quantized key at position p.
func (c *kiviCache) keyRow(layer, h, p int, dst []float32) {
	g := (h*c.groups + p/c.g) * c.hd
	row := c.kCodes(layer, h, p)
	for ch := range dst {
		dst[ch] = f16At(c.kMin[layer], g+ch) + f16At(c.kScale[layer], g+ch)*float32(kernel.Code(row, ch, c.kb))
	}
}

// valueRow dequantizes head h's quantized value at position p.
func (c *kiviCache) valueRow(layer, h, p int, dst []float32) {
	ng := c.hd / c.g
	row := c.vCodes(layer, h, p)
	for ch := range dst {
		j := (h*c.cap+p)*ng + ch/c.g
		dst[ch] = f16At(c.vMin[layer], j) + f16At(c.vScale[layer], j)*float32(kernel.Code(row, ch, c.vb))
	}
}

// Len implements model.KVCache.
func (c *kiviCache) Len() int { return minLen(c.lens) }

// Cap implements model.KVCache.
func (c *kiviCache) Cap() int { return c.cap }

// ScratchSize implements model.KVCache: a scaled query (or a partial sum)
// and a chunk of widened residual rows.
func (c *kiviCache) ScratchSize() int { return (wsChunk + 1) * c.hd }

// Bytes implements model.KVCache: codes, scales and minimums for the whole
// capacity plus the binary16 residual windows.
func (c *kiviCache) Bytes() int64 {
	var n int64
	for l := range c.kvDim {
		n += int64(len(c.kCode[l]) + len(c.vCode[l]) + len(c.kRes[l]) + len(c.vRes[l]))
		n += int64(len(c.kScale[l]) + len(c.kMin[l]) + len(c.vScale[l]) + len(c.vMin[l]))
	}
	return n
}

// dequant returns the first n keys and values of KV head head of layer as
// the cache holds them, for tests.
func (c *kiviCache) dequant(layer, head, n int) (k, v [][]float32) {
	qk, qv := c.quantized(c.lens[layer])
	for p := 0; p < n; p++ {
		kr, vr := make([]float32, c.hd), make([]float32, c.hd)
		if p < qk {
			c.keyRow(layer, head, p, kr)
		} else {
			kernel.F16ToF32Row(kr, c.kSlot(layer, head, p%c.kR))
		}
		if p < qv {
			c.valueRow(layer, head, p, vr)
		} else {
			kernel.F16ToF32Row(vr, c.vSlot(layer, head, p%c.r))
		}
		k, v = append(k, kr), append(v, vr)
	}
	return k, v
}
