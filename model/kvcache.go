package model

import (
	"fmt"

	"github.com/terse-llm/terse/kernel"
)

// KVCache holds one sequence's keys and values, layer by layer, and takes
// part in attention: it scores queries against its keys and sums its values
// under attention weights, each in whatever form it stores them (float32
// here; quantized or evicting caches elsewhere), so that no caller needs a
// dense float32 copy of the cache.
//
// Within a forward pass the engine calls Append for every new position of
// a layer, then Scores and WeightedSum for that layer's KV heads from
// several goroutines at once, each on a different head and with its own
// scratch of ScratchSize() floats. Scores and WeightedSum must therefore not
// modify the cache; a cache that needs working memory (to dequantize a
// head's keys, say) uses the scratch it is handed.
type KVCache interface {
	// Append stores the key and value vectors (the layer's KV width each)
	// of the layer's next position.
	Append(layer int, k, v []float32) error
	// Scores sets dst[i*ds+p] = scale · (q_i · k_p) for the nq queries
	// q_i = q[i*qs : i*qs+HeadDim] and the keys of KV head head at
	// positions p < n of layer.
	Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error
	// WeightedSum sets dst[c] = Σ_p w[p] · v_p[c] over positions p <
	// len(w) of the values of KV head head of layer (len(dst) = HeadDim).
	WeightedSum(layer, head int, w, dst []float32, scratch []float32) error
	// Truncate forgets every position at or past n (n ≤ Len()), in every
	// layer: the sequence continues from position n.
	Truncate(n int) error
	// Len is the number of positions every layer holds.
	Len() int
	// Cap is the number of positions the cache can hold.
	Cap() int
	// Bytes is the memory the cache holds.
	Bytes() int64
	// ScratchSize is the number of floats of scratch one Scores or
	// WeightedSum call needs.
	ScratchSize() int
}

// AttentionMasker is an optional interface of a KVCache that decides,
// query by query, which of its positions attention sees (an evicting
// cache), and sees the attention weights that result. The engine calls
// Mask with each query head's scores row before the softmax and Observe
// after it, then WeightedSum. Calls for different query heads (qhead, the
// model's attention head, not the KV head) come from different goroutines
// at once, so a cache keeps any state per query head; for one query head
// of one layer they come in order of position within a forward pass.
type AttentionMasker interface {
	// Mask may lower the scores row[p] (len(row) = pos+1) of positions the
	// query of head qhead at position pos must not see, to at least 1e4
	// below the row's largest kept score; row[pos] stays.
	Mask(layer, qhead, pos int, row []float32)
	// Observe gets the row after the softmax: row[p]·inv is the attention
	// weight of position p. It sets the weights of the positions Mask
	// lowered to exactly 0.
	Observe(layer, qhead, pos int, row []float32, inv float32)
}

// FloatCache is the uncompressed float32 KV cache.
type FloatCache struct {
	cap, hd int
	kvDim   []int       // per layer
	lens    []int       // positions held, per layer
	k, v    [][]float32 // per layer, cap×kvDim
}

// NewFloatCache allocates a cache of positions for every layer of cfg.
func NewFloatCache(cfg *Config, positions int) *FloatCache {
	layers := cfg.NLayers
	c := &FloatCache{cap: positions, hd: cfg.HeadDim, kvDim: make([]int, layers), lens: make([]int, layers),
		k: make([][]float32, layers), v: make([][]float32, layers)}
	for i := range c.k {
		c.kvDim[i] = cfg.KVDim(i)
		c.k[i] = make([]float32, positions*c.kvDim[i])
		c.v[i] = make([]float32, positions*c.kvDim[i])
	}
	return c
}

// Append implements KVCache.
func (c *FloatCache) Append(layer int, k, v []float32) error {
	if layer < 0 || layer >= len(c.k) {
		return fmt.Errorf("kv cache: layer %d of %d", layer, len(c.k))
	}
	d, pos := c.kvDim[layer], c.lens[layer]
	if len(k) != d || len(v) != d {
		return fmt.Errorf("kv cache: layer %d: key and value of %d and %d floats, want %d", layer, len(k), len(v), d)
	}
	if pos >= c.cap {
		return fmt.Errorf("kv cache: layer %d: position %d outside capacity %d", layer, pos, c.cap)
	}
	copy(c.k[layer][pos*d:(pos+1)*d], k)
	copy(c.v[layer][pos*d:(pos+1)*d], v)
	c.lens[layer]++
	return nil
}

// check validates a read of n positions of KV head head of layer.
func (c *FloatCache) check(layer, head, n int) error {
	if layer < 0 || layer >= len(c.k) {
		return fmt.Errorf("kv cache: layer %d of %d", layer, len(c.k))
	}
	if head < 0 || (head+1)*c.hd > c.kvDim[layer] {
		return fmt.Errorf("kv cache: layer %d: KV head %d of %d", layer, head, c.kvDim[layer]/c.hd)
	}
	if n > c.lens[layer] {
		return fmt.Errorf("kv cache: layer %d: %d positions asked for, %d held", layer, n, c.lens[layer])
	}
	return nil
}

// Scores implements KVCache with kernel.Scores on the stored keys.
func (c *FloatCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, _ []float32) error {
	if err := c.check(layer, head, n); err != nil {
		return err
	}
	if nq > 0 && (len(q) < (nq-1)*qs+c.hd || len(dst) < (nq-1)*ds+n) {
		return fmt.Errorf("kv cache: layer %d: %d queries: buffers too small", layer, nq)
	}
	d := c.kvDim[layer]
	kernel.Scores(dst, ds, q, qs, nq, c.k[layer][head*c.hd:], d, n, c.hd, scale)
	return nil
}

// WeightedSum implements KVCache with kernel.WeightedSum on the stored values.
func (c *FloatCache) WeightedSum(layer, head int, w, dst []float32, _ []float32) error {
	if err := c.check(layer, head, len(w)); err != nil {
		return err
	}
	if len(dst) != c.hd {
		return fmt.Errorf("kv cache: layer %d: output of %d floats for head_dim %d", layer, len(dst), c.hd)
	}
	kernel.WeightedSum(dst, w, c.v[layer][head*c.hd:], c.kvDim[layer])
	return nil
}

// Truncate implements KVCache.
func (c *FloatCache) Truncate(n int) error {
	if n < 0 || n > c.Len() {
		return fmt.Errorf("kv cache: truncate to %d of %d positions", n, c.Len())
	}
	for i := range c.lens {
		c.lens[i] = min(c.lens[i], n)
	}
	return nil
}

// Len implements KVCache.
func (c *FloatCache) Len() int {
	if len(c.lens) == 0 {
		return 0
	}
	n := c.lens[0]
	for _, l := range c.lens[1:] {
		n = min(n, l)
	}
	return n
}

// Cap implements KVCache.
func (c *FloatCache) Cap() int { return c.cap }

// ScratchSize implements KVCache: the float cache needs none.
func (c *FloatCache) ScratchSize() int { return 0 }

// Bytes implements KVCache.
func (c *FloatCache) Bytes() int64 {
	var n int64
	for i := range c.k {
		n += 4 * int64(len(c.k[i])+len(c.v[i]))
	}
	return n
}
