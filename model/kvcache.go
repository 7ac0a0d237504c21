package model

import "fmt"

// KVCache stores each layer's keys and values by position. The plain
// float32 cache is one implementation; compressed caches are others.
type KVCache interface {
	// Put stores the key and value vectors (KVDim floats each) of one
	// position of one layer. Positions are written in increasing order.
	Put(layer, pos int, k, v []float32)
	// Keys returns positions [0, n) of a layer's keys as n×KVDim floats.
	// The slice is valid until the next call on the cache and must not be
	// written to.
	Keys(layer, n int) []float32
	// Values is Keys for the values.
	Values(layer, n int) []float32
	// Cap is the number of positions the cache can hold.
	Cap() int
}

// FloatCache is the uncompressed float32 KV cache.
type FloatCache struct {
	cap   int
	kvDim []int       // per layer
	k, v  [][]float32 // per layer, cap×kvDim
}

// NewFloatCache allocates a cache of positions for every layer of cfg.
func NewFloatCache(cfg *Config, positions int) *FloatCache {
	layers := cfg.NLayers
	c := &FloatCache{cap: positions, kvDim: make([]int, layers), k: make([][]float32, layers), v: make([][]float32, layers)}
	for i := range c.k {
		c.kvDim[i] = cfg.KVDim(i)
		c.k[i] = make([]float32, positions*c.kvDim[i])
		c.v[i] = make([]float32, positions*c.kvDim[i])
	}
	return c
}

// Put implements KVCache.
func (c *FloatCache) Put(layer, pos int, k, v []float32) {
	if pos < 0 || pos >= c.cap {
		panic(fmt.Sprintf("kv cache: position %d outside capacity %d", pos, c.cap))
	}
	d := c.kvDim[layer]
	copy(c.k[layer][pos*d:(pos+1)*d], k)
	copy(c.v[layer][pos*d:(pos+1)*d], v)
}

// Keys implements KVCache.
func (c *FloatCache) Keys(layer, n int) []float32 { return c.k[layer][:n*c.kvDim[layer]] }

// Values implements KVCache.
func (c *FloatCache) Values(layer, n int) []float32 { return c.v[layer][:n*c.kvDim[layer]] }

// Cap implements KVCache.
func (c *FloatCache) Cap() int { return c.cap }

// Bytes is the memory the cache holds.
func (c *FloatCache) Bytes() int64 {
	var n int64
	for i := range c.k {
		n += 4 * int64(len(c.k[i])+len(c.v[i]))
	}
	return n
}
