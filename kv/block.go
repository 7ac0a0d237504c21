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

// blockCache stores every key and value in one ggml element type,
// llama.cpp's quantized cache: each head's row is quantized with the type's
// reference quantizer as it is appended, in blocks along the head
// dimension. A layer's rows are stored head by head (all positions of KV
// head 0, then of head 1, …) so that one head's positions are contiguous
// and are read in long runs.
type blockCache struct {
	dt      tensor.DType
	name    string // the spec's name of dt
	t       ggml.Type
	cap, hd int
	headB   int   // bytes of one head's row
	kvDim   []int // per layer
	lens    []int
	k, v    [][]byte // per layer: KV heads × cap rows of headB bytes
	intDot  bool     // keys scored by integer dot products with a Q8_0 query
	acts    sync.Pool
}

// actBlock is the Q8_0 query's block size.
const actBlock = 32

func newBlockCache(cfg *model.Config, positions int, dt tensor.DType) (*blockCache, error) {
	t, ok := ggml.Lookup(dt)
	if !ok {
		return nil, fmt.Errorf("kv %s: not a registered element type", strings.ToLower(dt.String()))
	}
	if cfg.HeadDim%t.BlockSize != 0 {
		return nil, fmt.Errorf("kv %s: head dimension %d is not a whole number of %d-element blocks", strings.ToLower(dt.String()), cfg.HeadDim, t.BlockSize)
	}
	c := &blockCache{dt: dt, name: strings.ToLower(dt.String()), t: t, cap: positions, hd: cfg.HeadDim, headB: cfg.HeadDim / t.BlockSize * t.BlockBytes,
		kvDim: make([]int, cfg.NLayers), lens: make([]int, cfg.NLayers),
		k: make([][]byte, cfg.NLayers), v: make([][]byte, cfg.NLayers),
		intDot: t.Dot != nil && t.Act == ggml.ActQ8_0 && cfg.HeadDim%actBlock == 0}
	for l := range c.k {
		c.kvDim[l] = cfg.KVDim(l)
		n := c.kvDim[l] / c.hd * positions * c.headB
		c.k[l], c.v[l] = make([]byte, n), make([]byte, n)
	}
	nb := c.hd / actBlock
	c.acts.New = func() any {
		return &ggml.ActRow{Q: make([]int8, c.hd), D: make([]float32, nb), S: make([]float32, nb)}
	}
	return c, nil
}

// row returns the bytes of KV head head's row at position p in a layer's
// store s.
func (c *blockCache) row(s []byte, head, p int) []byte {
	off := (head*c.cap + p) * c.headB
	return s[off : off+c.headB]
}

// Append implements model.KVCache, quantizing the rows.
func (c *blockCache) Append(layer int, k, v []float32) error {
	if layer < 0 || layer >= len(c.k) {
		return fmt.Errorf("kv %s: layer %d of %d", c.name, layer, len(c.k))
	}
	d, pos := c.kvDim[layer], c.lens[layer]
	if len(k) != d || len(v) != d {
		return fmt.Errorf("kv %s: layer %d: key and value of %d and %d floats, want %d", c.name, layer, len(k), len(v), d)
	}
	if pos >= c.cap {
		return fmt.Errorf("kv %s: layer %d: position %d outside capacity %d", c.name, layer, pos, c.cap)
	}
	for h := 0; h < d/c.hd; h++ {
		c.t.Quantize(k[h*c.hd:(h+1)*c.hd], c.row(c.k[layer], h, pos))
		c.t.Quantize(v[h*c.hd:(h+1)*c.hd], c.row(c.v[layer], h, pos))
	}
	c.lens[layer]++
	return nil
}

func (c *blockCache) check(layer, head, n int) error {
	return checkAccess(&c.name, c.kvDim, c.lens, c.hd, layer, head, n)
}

// checkAccess validates a read of the first n positions of KV head head of
// layer, for a cache named name whose layers are kvDim wide and hold lens
// positions (head width hd): the check every cache's Scores and
// WeightedSum start with. name is a pointer (a *string or a *Spec) so that
// passing it allocates nothing on the path that finds no error; it is
// formatted only into an error.
func checkAccess(name any, kvDim, lens []int, hd, layer, head, n int) error {
	if layer < 0 || layer >= len(kvDim) {
		return fmt.Errorf("kv %s: layer %d of %d", nameOf(name), layer, len(kvDim))
	}
	if head < 0 || (head+1)*hd > kvDim[layer] {
		return fmt.Errorf("kv %s: layer %d: KV head %d of %d", nameOf(name), layer, head, kvDim[layer]/hd)
	}
	if n < 0 || n > lens[layer] {
		return fmt.Errorf("kv %s: layer %d: %d positions asked for, %d held", nameOf(name), layer, n, lens[layer])
	}
	return nil
}

// nameOf is the text of checkAccess's name.
func nameOf(name any) any {
	if s, ok := name.(*string); ok {
		return *s
	}
	return name
}

// Scores implements model.KVCache. Block types with an integer path score
// a Q8_0-quantized query against the key blocks (ggml's flash attention on
// a quantized cache does the same); the others are dequantized a chunk of
// positions at a time into scratch and scored in float32.
func (c *blockCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
	if err := c.check(layer, head, n); err != nil {
		return err
	}
	if nq > 0 && (len(q) < (nq-1)*qs+c.hd || len(dst) < (nq-1)*ds+n) {
		return fmt.Errorf("kv %s: layer %d: %d queries: buffers too small", c.name, layer, nq)
	}
	if n == 0 || nq <= 0 {
		return nil
	}
	keys := c.k[layer][head*c.cap*c.headB : (head*c.cap+n)*c.headB]
	if c.intDot {
		a := c.acts.Get().(*ggml.ActRow)
		defer c.acts.Put(a)
		for i := 0; i < nq; i++ {
			ggml.QuantizeActQ8_0(a, q[i*qs:i*qs+c.hd])
			row := dst[i*ds : i*ds+n]
			kernel.QDotRows(c.dt, row, keys, c.headB, a)
			for p := range row {
				row[p] *= scale
			}
		}
		return nil
	}
	if len(scratch) < c.ScratchSize() {
		return fmt.Errorf("kv %s: scratch of %d floats, want %d", c.name, len(scratch), c.ScratchSize())
	}
	buf := scratch[:wsChunk*c.hd]
	for p0 := 0; p0 < n; p0 += wsChunk {
		m := min(wsChunk, n-p0)
		c.rows(buf[:m*c.hd], keys[p0*c.headB:(p0+m)*c.headB])
		kernel.Scores(dst[p0:], ds, q, qs, nq, buf, c.hd, m, c.hd, scale)
	}
	return nil
}

// rows dequantizes consecutive head rows src into buf.
func (c *blockCache) rows(buf []float32, src []byte) {
	switch c.dt {
	case tensor.F16:
		kernel.F16ToF32Row(buf, src)
	case tensor.BF16:
		kernel.BF16ToF32Row(buf, src)
	default:
		kernel.DequantRow(c.dt, buf, src)
	}
}

// WeightedSum implements model.KVCache, dequantizing the values a chunk of
// positions at a time into scratch.
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
	vals := c.v[layer][head*c.cap*c.headB:]
	buf, part := scratch[:wsChunk*c.hd], scratch[wsChunk*c.hd:wsChunk*c.hd+c.hd]
	clear(dst)
	for p0 := 0; p0 < len(w); p0 += wsChunk {
		m := min(wsChunk, len(w)-p0)
		c.rows(buf[:m*c.hd], vals[p0*c.headB:(p0+m)*c.headB])
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
	for p := 0; p < n; p++ {
		kr, vr := make([]float32, c.hd), make([]float32, c.hd)
		c.t.Dequantize(c.row(c.k[layer], head, p), kr)
		c.t.Dequantize(c.row(c.v[layer], head, p), vr)
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
