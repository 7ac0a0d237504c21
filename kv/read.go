package kv

import (
	"fmt"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
)

// checkRead validates a ReadKV request against a cache of per-layer KV
// widths kvDim holding lens positions.
func checkRead(name string, kvDim, lens []int, layer, from, to int, k, v []float32) error {
	if layer < 0 || layer >= len(kvDim) {
		return fmt.Errorf("kv %s: read layer %d of %d", name, layer, len(kvDim))
	}
	d := kvDim[layer]
	if from < 0 || to < from || to > lens[layer] {
		return fmt.Errorf("kv %s: layer %d: read positions [%d, %d) of %d held", name, layer, from, to, lens[layer])
	}
	if len(k) != (to-from)*d || len(v) != (to-from)*d {
		return fmt.Errorf("kv %s: layer %d: read buffers of %d and %d floats for %d positions of width %d", name, layer, len(k), len(v), to-from, d)
	}
	return nil
}

// ReadKV implements model.KVReader: the rows dequantized as attention
// dequantizes them.
func (c *blockCache) ReadKV(layer, from, to int, k, v []float32) error {
	if err := checkRead(c.name, c.kvDim, c.lens, layer, from, to, k, v); err != nil {
		return err
	}
	d := c.kvDim[layer]
	for h := 0; h < d/c.hd; h++ {
		for p := from; p < to; p++ {
			off := (p-from)*d + h*c.hd
			c.rows(k[off:off+c.hd], c.row(c.k[layer], h, p))
			c.rows(v[off:off+c.hd], c.row(c.v[layer], h, p))
		}
	}
	return nil
}

// ReadKV implements model.KVReader: quantized positions dequantized,
// those in the residual window widened from binary16.
func (c *kiviCache) ReadKV(layer, from, to int, k, v []float32) error {
	if err := checkRead(c.sp.String(), c.kvDim, c.lens, layer, from, to, k, v); err != nil {
		return err
	}
	d := c.kvDim[layer]
	qk, qv := c.quantized(c.lens[layer])
	for h := 0; h < d/c.hd; h++ {
		for p := from; p < to; p++ {
			off := (p-from)*d + h*c.hd
			kr, vr := k[off:off+c.hd], v[off:off+c.hd]
			if p < qk {
				c.keyRow(layer, h, p, kr)
			} else {
				kernel.F16ToF32Row(kr, c.kSlot(layer, h, p%c.kR))
			}
			if p < qv {
				c.valueRow(layer, h, p, vr)
			} else {
				kernel.F16ToF32Row(vr, c.vSlot(layer, h, p%c.r))
			}
		}
	}
	return nil
}

// ReadKV implements model.KVReader: the inner cache's content, evicted
// positions included (they are still stored; attention masks them).
func (c *evictCache) ReadKV(layer, from, to int, k, v []float32) error {
	r, ok := c.KVCache.(model.KVReader)
	if !ok {
		return fmt.Errorf("kv %s: inner cache %T cannot give back its keys and values", c.e.String(), c.KVCache)
	}
	return r.ReadKV(layer, from, to, k, v)
}

// readRows fills ReadKV's k and v (positions from to to of a layer with
// kvDim channels, hd per head, token-major) by widening one head's key and
// value row at a time with row (checkRead has passed).
func readRows(kvDim, hd, from, to int, k, v []float32, row func(h, p int, k, v []float32)) {
	for h := 0; h < kvDim/hd; h++ {
		for p := from; p < to; p++ {
			off := (p-from)*kvDim + h*hd
			row(h, p, k[off:off+hd], v[off:off+hd])
		}
	}
}

// headRows returns the first n key and value rows (hd channels each) of one
// head, widened by row, for tests.
func headRows(hd, n int, row func(p int, k, v []float32)) (k, v [][]float32) {
	for p := 0; p < n; p++ {
		kr, vr := make([]float32, hd), make([]float32, hd)
		row(p, kr, vr)
		k, v = append(k, kr), append(v, vr)
	}
	return k, v
}
