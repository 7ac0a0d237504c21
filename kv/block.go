package kv

import (
	"fmt"
	"strings"
	"sync"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// wsChunk is how many value rows WeightedSum dequantizes into scratch at a
// time (and how many key rows Scores dequantizes for types without an
// integer path).
const wsChunk = 64

// blockCache stores every key and value row (a layer's KV width) in one
// ggml element type, llama.cpp's quantized cache: the rows are quantized
// with the type's reference quantizer as they are appended, in blocks
// along the head dimension.
type blockCache struct {
	dt       tensor.DType
	name     string // the spec's name of dt
	t        ggml.Type
	cap, hd  int
	headB    int   // bytes of one head's part of a row
	kvDim    []int // per layer
	rowB     []int // bytes of one row, per layer
	lens     []int
	k, v     [][]byte // per layer, cap rows
	intDot   bool     // keys scored by integer dot products with a Q8_0 query
	acts     sync.Pool
	actBlock int
}

func newBlockCache(cfg *model.Config, positions int, dt tensor.DType) (*blockCache, error) {
	t, ok := ggml.Lookup(dt)
	if !ok {
		return nil, fmt.Errorf("kv %s: not a registered element type", strings.ToLower(dt.String()))
	}
	if cfg.HeadDim%t.BlockSize != 0 {
		return nil, fmt.Errorf("kv %s: head dimension %d is not a whole number of %d-element blocks", strings.ToLower(dt.String()), cfg.HeadDim, t.BlockSize)
	}
	c := &blockCache{dt: dt, name: strings.ToLower(dt.String()), t: t, cap: positions, hd: cfg.HeadDim, headB: cfg.HeadDim / t.BlockSize * t.BlockBytes,
		kvDim: make([]int, cfg.NLayers), rowB: make([]int, cfg.NLayers), lens: make([]int, cfg.NLayers),
		k: make([][]byte, cfg.NLayers), v: make([][]byte, cfg.NLayers),
		intDot: t.Dot != nil && t.Act == ggml.ActQ8_0, actBlock: 32}
	for l := range c.k {
		c.kvDim[l] = cfg.KVDim(l)
		c.rowB[l] = c.kvDim[l] / t.BlockSize * t.BlockBytes
		c.k[l] = make([]byte, positions*c.rowB[l])
		c.v[l] = make([]byte, positions*c.rowB[l])
	}
	if c.intDot && c.hd%c.actBlock != 0 {
		c.intDot = false
	}
	nb := c.hd / c.actBlock
	c.acts.New = func() any {
		return &ggml.ActRow{Q: make([]int8, c.hd), D: make([]float32, nb), S: make([]float32, nb)}
	}
	return c, nil
}

// Append implements model.KVCache, quantizing the rows.
func (c *blockCache) Append(layer int, k, v []float32) error {
	if layer < 0 || layer >= len(c.k) {
		return fmt.Errorf("kv %s: layer %d of %d", c.name, layer, len(c.k))
	}
	d, pos, rb := c.kvDim[layer], c.lens[layer], c.rowB[layer]
	if len(k) != d || len(v) != d {
		return fmt.Errorf("kv %s: layer %d: key and value of %d and %d floats, want %d", c.name, layer, len(k), len(v), d)
	}
	if pos >= c.cap {
		return fmt.Errorf("kv %s: layer %d: position %d outside capacity %d", c.name, layer, pos, c.cap)
	}
	c.t.Quantize(k, c.k[layer][pos*rb:(pos+1)*rb])
	c.t.Quantize(v, c.v[layer][pos*rb:(pos+1)*rb])
	c.lens[layer]++
	return nil
}

func (c *blockCache) check(layer, head, n int) error {
	if layer < 0 || layer >= len(c.k) {
		return fmt.Errorf("kv %s: layer %d of %d", c.name, layer, len(c.k))
	}
	if head < 0 || (head+1)*c.hd > c.kvDim[layer] {
		return fmt.Errorf("kv %s: layer %d: KV head %d of %d", c.name, layer, head, c.kvDim[layer]/c.hd)
	}
	if n < 0 || n > c.lens[layer] {
		return fmt.Errorf("kv %s: layer %d: %d positions asked for, %d held", c.name, layer, n, c.lens[layer])
	}
	return nil
}

// Scores implements model.KVCache. Block types with an integer path score
// a Q8_0-quantized query against the key blocks (ggml's flash attention on
// a quantized cache); the float types dot the query with each binary16 or
// bfloat16 key.
func (c *blockCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
	if err := c.check(layer, head, n); err != nil {
		return err
	}
	if nq > 0 && (len(q) < (nq-1)*qs+c.hd || len(dst) < (nq-1)*ds+n) {
		return fmt.Errorf("kv %s: layer %d: %d queries: buffers too small", c.name, layer, nq)
	}
	if n == 0 {
		return nil
	}
	rb := c.rowB[layer]
	keys := c.k[layer][head*c.headB:]
	switch {
	case c.intDot:
		a := c.acts.Get().(*ggml.ActRow)
		defer c.acts.Put(a)
		for i := 0; i < nq; i++ {
			ggml.QuantizeActQ8_0(a, q[i*qs:i*qs+c.hd])
			row := dst[i*ds : i*ds+n]
			kernel.QDotRows(c.dt, row, keys, rb, a)
			for p := range row {
				row[p] *= scale
			}
		}
	case c.dt == tensor.F16:
		for i := 0; i < nq; i++ {
			qi, row := q[i*qs:i*qs+c.hd], dst[i*ds:i*ds+n]
			for p := range row {
				row[p] = scale * kernel.DotF16(keys[p*rb:p*rb+c.headB], qi)
			}
		}
	case c.dt == tensor.BF16:
		for i := 0; i < nq; i++ {
			qi, row := q[i*qs:i*qs+c.hd], dst[i*ds:i*ds+n]
			for p := range row {
				row[p] = scale * kernel.DotBF16(keys[p*rb:p*rb+c.headB], qi)
			}
		}
	default: // dequantize keys a chunk at a time
		if len(scratch) < c.ScratchSize() {
			return fmt.Errorf("kv %s: scratch of %d floats, want %d", c.name, len(scratch), c.ScratchSize())
		}
		buf := scratch[:wsChunk*c.hd]
		for p0 := 0; p0 < n; p0 += wsChunk {
			m := min(wsChunk, n-p0)
			c.rows(buf, keys, rb, p0, m)
			kernel.Scores(dst[p0:], ds, q, qs, nq, buf, c.hd, m, c.hd, scale)
		}
	}
	return nil
}

// rows dequantizes m head rows from position p0 of src (rb bytes a row)
// into buf, hd floats each.
func (c *blockCache) rows(buf []float32, src []byte, rb, p0, m int) {
	for p := 0; p < m; p++ {
		off := (p0 + p) * rb
		kernel.DequantRow(c.dt, buf[p*c.hd:(p+1)*c.hd], src[off:off+c.headB])
	}
}

// WeightedSum implements model.KVCache, dequantizing the values a chunk of
// rows at a time into scratch.
func (c *blockCache) WeightedSum(layer, head int, w, dst []float32, scratch []float32) error {
	if err := c.check(layer, head, len(w)); err != nil {
		return err
	}
	if len(dst) != c.hd {
		return fmt.Errorf("kv %s: layer %d: output of %d floats for head_dim %d", c.name, layer, len(dst), c.hd)
	}
	if len(scratch) < c.ScratchSize() {
		return fmt.Errorf("kv %s: scratch of %d floats, want %d", c.name, len(scratch), c.ScratchSize())
	}
	rb := c.rowB[layer]
	vals := c.v[layer][head*c.headB:]
	buf, part := scratch[:wsChunk*c.hd], scratch[wsChunk*c.hd:wsChunk*c.hd+c.hd]
	clear(dst)
	for p0 := 0; p0 < len(w); p0 += wsChunk {
		m := min(wsChunk, len(w)-p0)
		c.rows(buf, vals, rb, p0, m)
		if p0 == 0 {
			kernel.WeightedSum(dst, w[:m], buf, c.hd)
			continue
		}
		kernel.WeightedSum(part, w[p0:p0+m], buf, c.hd)
		for j, x := range part {
			dst[j] += x
		}
	}
	return nil
}

// Truncate implements model.KVCache.
func (c *blockCache) Truncate(n int) error {
	if n < 0 || n > c.Len() {
		return fmt.Errorf("kv %s: truncate to %d of %d positions", c.name, n, c.Len())
	}
	for i := range c.lens {
		c.lens[i] = min(c.lens[i], n)
	}
	return nil
}

// Len implements model.KVCache.
func (c *blockCache) Len() int { return minLen(c.lens) }

// Cap implements model.KVCache.
func (c *blockCache) Cap() int { return c.cap }

// ScratchSize implements model.KVCache: a chunk of dequantized rows and one
// partial sum.
func (c *blockCache) ScratchSize() int { return (wsChunk + 1) * c.hd }

// Bytes implements model.KVCache: the blocks (scales included) of every
// row of the capacity.
func (c *blockCache) Bytes() int64 {
	var n int64
	for l := range c.k {
		n += int64(len(c.k[l]) + len(c.v[l]))
	}
	return n
}

// dequant returns the first n keys and values of KV head head of layer as
// the cache holds them, for tests.
func (c *blockCache) dequant(layer, head, n int) (k, v [][]float32) {
	rb := c.rowB[layer]
	for p := 0; p < n; p++ {
		kr, vr := make([]float32, c.hd), make([]float32, c.hd)
		off := p*rb + head*c.headB
		c.t.Dequantize(c.k[layer][off:off+c.headB], kr)
		c.t.Dequantize(c.v[layer][off:off+c.headB], vr)
		k, v = append(k, kr), append(v, vr)
	}
	return k, v
}

func minLen(lens []int) int {
	if len(lens) == 0 {
		return 0
	}
	n := lens[0]
	for _, l := range lens[1:] {
		n = min(n, l)
	}
	return n
}
