package kv

import (
	"fmt"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
)

// tqLevel is one precision a mixed-precision cache stores positions at:
// the key and value row formats and how many positions it has room for.
type tqLevel struct {
	k, v  rowFmt
	slots int
}

// tqCache is the store the zip and stair caches share: every position of
// a layer is held at one of a few precision levels, in a slot of that
// level's pool (all KV heads of the position at the same level and slot).
// The levels' slots add up to the capacity, so the cache always has room
// and its Bytes is fixed; a placement policy (zip: saliency; stair: age)
// picks each position's level. Rows are optionally rotated (rotation)
// before they are quantized; scores then rotate the query and sums rotate
// back.
type tqCache struct {
	name    string
	cap, hd int
	levels  []tqLevel
	rot     *rotation
	kvDim   []int
	lens    []int
	k, v    [][][]byte   // per layer, per level: heads × slots rows
	lvl     [][]uint8    // per layer: each position's level
	slot    [][]uint16   // per layer: each position's slot in its level
	free    [][][]uint16 // per layer, per level: free slots (a stack)
	place   func(layer, pos int) int
	full    func(layer, level int) // frees a slot of a full level, or not
	tmp     []float32
	tmp2    []float32
}

func newTQCache(name string, cfg *model.Config, positions int, levels []tqLevel, rotate bool) (*tqCache, error) {
	hd := cfg.HeadDim
	for _, lv := range levels {
		for _, f := range []rowFmt{lv.k, lv.v} {
			if f.bits != 16 && (f.group < 1 || hd%f.group != 0) {
				return nil, fmt.Errorf("kv %s: head dimension %d is not a whole number of %d-channel groups", name, hd, f.group)
			}
		}
	}
	total := 0
	for _, lv := range levels {
		total += lv.slots
	}
	if total != positions || positions > 1<<16 {
		return nil, fmt.Errorf("kv %s: levels hold %d of %d positions (at most 65536)", name, total, positions)
	}
	c := &tqCache{name: name, cap: positions, hd: hd, levels: levels, kvDim: make([]int, cfg.NLayers), lens: make([]int, cfg.NLayers),
		k: make([][][]byte, cfg.NLayers), v: make([][][]byte, cfg.NLayers), lvl: make([][]uint8, cfg.NLayers),
		slot: make([][]uint16, cfg.NLayers), free: make([][][]uint16, cfg.NLayers), tmp: make([]float32, hd), tmp2: make([]float32, hd)}
	if rotate {
		if c.rot = newRotation(hd); c.rot == nil {
			return nil, fmt.Errorf("kv %s: rotation needs a power-of-two head dimension, not %d", name, hd)
		}
	}
	for l := range c.k {
		c.kvDim[l] = cfg.KVDim(l)
		heads := c.kvDim[l] / hd
		c.lvl[l], c.slot[l] = make([]uint8, positions), make([]uint16, positions)
		c.k[l], c.v[l], c.free[l] = make([][]byte, len(levels)), make([][]byte, len(levels)), make([][]uint16, len(levels))
		for i, lv := range levels {
			c.k[l][i] = make([]byte, heads*lv.slots*lv.k.bytes(hd))
			c.v[l][i] = make([]byte, heads*lv.slots*lv.v.bytes(hd))
			fr := make([]uint16, lv.slots)
			for s := range fr {
				fr[s] = uint16(lv.slots - 1 - s) // slot 0 on top
			}
			c.free[l][i] = fr
		}
	}
	return c, nil
}

// kRow and vRow are KV head h's stored key and value rows at level i,
// slot s of a layer.
func (c *tqCache) kRow(layer, i, h, s int) []byte {
	f := c.levels[i].k
	b := f.bytes(c.hd)
	off := (h*c.levels[i].slots + s) * b
	return c.k[layer][i][off : off+b]
}

func (c *tqCache) vRow(layer, i, h, s int) []byte {
	f := c.levels[i].v
	b := f.bytes(c.hd)
	off := (h*c.levels[i].slots + s) * b
	return c.v[layer][i][off : off+b]
}

// alloc takes a free slot of level i of a layer, asking the policy to make
// room when there is none; failing that, the nearest level with room.
func (c *tqCache) alloc(layer, i int) (level, slot int) {
	if len(c.free[layer][i]) == 0 && c.full != nil {
		c.full(layer, i)
	}
	for d := 0; d < len(c.levels); d++ {
		for _, j := range []int{i + d, i - d} {
			if j < 0 || j >= len(c.levels) {
				continue
			}
			fr := c.free[layer][j]
			if n := len(fr); n > 0 {
				c.free[layer][j] = fr[:n-1]
				return j, int(fr[n-1])
			}
		}
	}
	panic("kv: tq cache without a free slot below its capacity") // levels add up to the capacity
}

// Append implements model.KVCache.
func (c *tqCache) Append(layer int, k, v []float32) error {
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
	want := 0
	if c.place != nil {
		want = c.place(layer, pos)
	}
	i, s := c.alloc(layer, want)
	c.lvl[layer][pos], c.slot[layer][pos] = uint8(i), uint16(s)
	for h := 0; h < d/c.hd; h++ {
		c.store(layer, i, h, s, k[h*c.hd:(h+1)*c.hd], v[h*c.hd:(h+1)*c.hd])
	}
	c.lens[layer]++
	return nil
}

// store quantizes one head's key and value (rotating them first).
func (c *tqCache) store(layer, i, h, s int, k, v []float32) {
	kr, vr := k, v
	if c.rot != nil {
		c.rot.forward(c.tmp, k)
		c.rot.forward(c.tmp2, v)
		kr, vr = c.tmp, c.tmp2
	}
	c.levels[i].k.quant(c.kRow(layer, i, h, s), kr)
	c.levels[i].v.quant(c.vRow(layer, i, h, s), vr)
}

// move requantizes position p of a layer from its level to level j (the
// stored, rotated rows are widened and quantized again), freeing its slot.
func (c *tqCache) move(layer, p, j int) {
	i, s := int(c.lvl[layer][p]), int(c.slot[layer][p])
	fr := c.free[layer][j]
	ns := int(fr[len(fr)-1])
	c.free[layer][j] = fr[:len(fr)-1]
	kr, vr := c.tmp, c.tmp2
	for h := 0; h < c.kvDim[layer]/c.hd; h++ {
		c.levels[i].k.dequant(kr, c.kRow(layer, i, h, s))
		c.levels[i].v.dequant(vr, c.vRow(layer, i, h, s))
		c.levels[j].k.quant(c.kRow(layer, j, h, ns), kr)
		c.levels[j].v.quant(c.vRow(layer, j, h, ns), vr)
	}
	c.free[layer][i] = append(c.free[layer][i], uint16(s))
	c.lvl[layer][p], c.slot[layer][p] = uint8(j), uint16(ns)
}

func (c *tqCache) check(layer, head, n int) error {
	return checkAccess(&c.name, c.kvDim, c.lens, c.hd, layer, head, n)
}

// Scores implements model.KVCache: the queries are rotated once, and the
// keys are widened a chunk of positions at a time into scratch and scored
// there by kernel.Scores.
func (c *tqCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
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
	lvl, slot := c.lvl[layer], c.slot[layer]
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
		for p0 := 0; p0 < n; p0 += wsChunk {
			k := min(wsChunk, n-p0)
			for p := p0; p < p0+k; p++ {
				i := int(lvl[p])
				c.levels[i].k.dequant(buf[(p-p0)*hd:(p-p0+1)*hd], c.kRow(layer, i, head, int(slot[p])))
			}
			kernel.Scores(dst[j0*ds+p0:], ds, qr, hd, m, buf, hd, k, hd, scale)
		}
	}
	return nil
}

// tqQueries is how many rotated queries Scores holds in scratch at once.
const tqQueries = 4

// WeightedSum implements model.KVCache: values are widened a chunk at a
// time, summed in the rotated space, and the sum rotated back.
func (c *tqCache) WeightedSum(layer, head int, w, dst []float32, scratch []float32) error {
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
	lvl, slot := c.lvl[layer], c.slot[layer]
	for p0 := 0; p0 < len(w); p0 += wsChunk {
		k := min(wsChunk, len(w)-p0)
		for p := p0; p < p0+k; p++ {
			i := int(lvl[p])
			c.levels[i].v.dequant(buf[(p-p0)*hd:(p-p0+1)*hd], c.vRow(layer, i, head, int(slot[p])))
		}
		kernel.WeightedSum(part, w[p0:p0+k], buf, hd)
		for j, x := range part {
			acc[j] += x
		}
	}
	if c.rot != nil {
		c.rot.inverse(dst, acc)
	} else {
		copy(dst, acc)
	}
	return nil
}

// Truncate implements model.KVCache: the slots of the forgotten positions
// are freed; the positions kept stay at their level.
func (c *tqCache) Truncate(n int) error {
	if n < 0 || n > c.Len() {
		return fmt.Errorf("kv %s: truncate to %d of %d positions", c.name, n, c.Len())
	}
	for l, old := range c.lens {
		for p := old - 1; p >= n; p-- {
			i := c.lvl[l][p]
			c.free[l][i] = append(c.free[l][i], c.slot[l][p])
		}
		c.lens[l] = min(old, n)
	}
	return nil
}

// Len implements model.KVCache.
func (c *tqCache) Len() int { return minLen(c.lens) }

// Cap implements model.KVCache.
func (c *tqCache) Cap() int { return c.cap }

// ScratchSize implements model.KVCache: a chunk of widened rows and the
// rotated queries (or the rotated sum and a partial one).
func (c *tqCache) ScratchSize() int { return (wsChunk + tqQueries) * c.hd }

// Bytes implements model.KVCache: every level's rows for its slots, and
// each position's level, slot and free-list entry.
func (c *tqCache) Bytes() int64 {
	var n int64
	for l := range c.k {
		for i := range c.levels {
			n += int64(len(c.k[l][i]) + len(c.v[l][i]) + 2*cap(c.free[l][i]))
		}
		n += int64(len(c.lvl[l]) + 2*len(c.slot[l]))
	}
	return n
}

// row widens KV head h's key and value at position p of a layer as
// attention sees them (rotated back).
func (c *tqCache) row(layer, h, p int, k, v []float32) {
	i, s := int(c.lvl[layer][p]), int(c.slot[layer][p])
	c.levels[i].k.dequant(k, c.kRow(layer, i, h, s))
	c.levels[i].v.dequant(v, c.vRow(layer, i, h, s))
	if c.rot != nil {
		c.rot.inverse(k, k)
		c.rot.inverse(v, v)
	}
}

// ReadKV implements model.KVReader.
func (c *tqCache) ReadKV(layer, from, to int, k, v []float32) error {
	if err := checkRead(c.name, c.kvDim, c.lens, layer, from, to, k, v); err != nil {
		return err
	}
	readRows(c.kvDim[layer], c.hd, from, to, k, v, func(h, p int, k, v []float32) { c.row(layer, h, p, k, v) })
	return nil
}

// dequant returns the first n keys and values of KV head head of layer as
// the cache holds them, for tests.
func (c *tqCache) dequant(layer, head, n int) (k, v [][]float32) {
	return headRows(c.hd, n, func(p int, k, v []float32) { c.row(layer, head, p, k, v) })
}
