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
	kvDim, cap int
	k, v       [][]float32 // per layer, cap×kvDim
}

// NewFloatCache allocates a cache for layers × positions × kvDim.
func NewFloatCache(layers, positions, kvDim int) *FloatCache {
	c := &FloatCache{kvDim: kvDim, cap: positions, k: make([][]float32, layers), v: make([][]float32, layers)}
	for i := range c.k {
		c.k[i] = make([]float32, positions*kvDim)
		c.v[i] = make([]float32, positions*kvDim)
	}
	return c
}

// Put implements KVCache.
func (c *FloatCache) Put(layer, pos int, k, v []float32) {
	if pos < 0 || pos >= c.cap {
		panic(fmt.Sprintf("kv cache: position %d outside capacity %d", pos, c.cap))
	}
	copy(c.k[layer][pos*c.kvDim:(pos+1)*c.kvDim], k)
	copy(c.v[layer][pos*c.kvDim:(pos+1)*c.kvDim], v)
}

// Keys implements KVCache.
func (c *FloatCache) Keys(layer, n int) []float32 { return c.k[layer][:n*c.kvDim] }

// Values implements KVCache.
func (c *FloatCache) Values(layer, n int) []float32 { return c.v[layer][:n*c.kvDim] }

// Cap implements KVCache.
func (c *FloatCache) Cap() int { return c.cap }

// Bytes is the memory the cache holds.
func (c *FloatCache) Bytes() int64 { return int64(len(c.k)) * 2 * int64(c.cap*c.kvDim) * 4 }
