package model

import (
	"fmt"
	"math"
)

// KVReader is an optional interface of a KVCache that gives back the keys
// and values it holds, as attention sees them (dequantized, float32). The
// prefix cache, the KV codec and the context store read caches through it.
type KVReader interface {
	// ReadKV sets k and v, each (to−from)·KVDim(layer) floats, to the keys
	// and values of positions from ≤ p < to of layer, position-major.
	ReadKV(layer, from, to int, k, v []float32) error
}

// KVBlock is the keys and values of a run of consecutive positions of one
// sequence, every layer, in float32: the unit that the prefix cache shares
// between sequences, that codecs encode and that context stores keep. Keys
// are stored as the engine stores them, rotated by RoPE for positions
// Start, Start+1, …; ShiftKeys moves them to other positions.
type KVBlock struct {
	Start int         // position of the first token
	Len   int         // number of positions
	KVDim []int       // per layer: the width of a key (and of a value)
	K, V  [][]float32 // per layer: Len × KVDim[layer], position-major
}

// NewKVBlock allocates a zero block of n positions for every layer of cfg,
// starting at position start.
func NewKVBlock(cfg *Config, start, n int) *KVBlock {
	b := &KVBlock{Start: start, Len: n, KVDim: make([]int, cfg.NLayers),
		K: make([][]float32, cfg.NLayers), V: make([][]float32, cfg.NLayers)}
	for l := range b.K {
		b.KVDim[l] = cfg.KVDim(l)
		b.K[l] = make([]float32, n*b.KVDim[l])
		b.V[l] = make([]float32, n*b.KVDim[l])
	}
	return b
}

// Bytes is the memory of the block's float32 keys and values.
func (b *KVBlock) Bytes() int64 {
	var n int64
	for l := range b.K {
		n += 4 * int64(len(b.K[l])+len(b.V[l]))
	}
	return n
}

// Check reports whether the block is consistent and fits cfg: one layer
// per model layer, each of the model's KV width and Len positions.
func (b *KVBlock) Check(cfg *Config) error {
	if b.Start < 0 || b.Len < 0 {
		return fmt.Errorf("kv block: start %d, length %d", b.Start, b.Len)
	}
	if len(b.KVDim) != cfg.NLayers || len(b.K) != cfg.NLayers || len(b.V) != cfg.NLayers {
		return fmt.Errorf("kv block: %d layers, model has %d", len(b.K), cfg.NLayers)
	}
	for l := range b.K {
		d := cfg.KVDim(l)
		if b.KVDim[l] != d {
			return fmt.Errorf("kv block: layer %d: KV width %d, model has %d", l, b.KVDim[l], d)
		}
		if len(b.K[l]) != b.Len*d || len(b.V[l]) != b.Len*d {
			return fmt.Errorf("kv block: layer %d: %d and %d floats for %d positions of width %d", l, len(b.K[l]), len(b.V[l]), b.Len, d)
		}
	}
	return nil
}

// Slice returns the block's positions [from, to) (relative to Start) as a
// new block that shares the floats.
func (b *KVBlock) Slice(from, to int) (*KVBlock, error) {
	if from < 0 || to < from || to > b.Len {
		return nil, fmt.Errorf("kv block: slice [%d, %d) of %d positions", from, to, b.Len)
	}
	s := &KVBlock{Start: b.Start + from, Len: to - from, KVDim: b.KVDim,
		K: make([][]float32, len(b.K)), V: make([][]float32, len(b.V))}
	for l := range b.K {
		d := b.KVDim[l]
		s.K[l] = b.K[l][from*d : to*d]
		s.V[l] = b.V[l][from*d : to*d]
	}
	return s, nil
}

// ExportKV reads positions [from, to) of every layer of c into a new block.
// c must implement KVReader.
func ExportKV(c KVCache, cfg *Config, from, to int) (*KVBlock, error) {
	r, ok := c.(KVReader)
	if !ok {
		return nil, fmt.Errorf("kv export: a %T cannot give back its keys and values", c)
	}
	if from < 0 || to < from || to > c.Len() {
		return nil, fmt.Errorf("kv export: positions [%d, %d) of %d held", from, to, c.Len())
	}
	b := NewKVBlock(cfg, from, to-from)
	for l := range b.K {
		if err := r.ReadKV(l, from, to, b.K[l], b.V[l]); err != nil {
			return nil, fmt.Errorf("kv export: %w", err)
		}
	}
	return b, nil
}

// ImportKV appends the block's positions to c, which must hold exactly
// b.Start positions (shift the block with ShiftKeys to move it).
func ImportKV(c KVCache, cfg *Config, b *KVBlock) error {
	if err := b.Check(cfg); err != nil {
		return fmt.Errorf("kv import: %w", err)
	}
	if c.Len() != b.Start {
		return fmt.Errorf("kv import: block starts at position %d, cache holds %d", b.Start, c.Len())
	}
	if c.Len()+b.Len > c.Cap() {
		return fmt.Errorf("kv import: %d positions after %d exceed the capacity %d", b.Len, c.Len(), c.Cap())
	}
	for p := 0; p < b.Len; p++ {
		for l := range b.K {
			d := b.KVDim[l]
			if err := c.Append(l, b.K[l][p*d:(p+1)*d], b.V[l][p*d:(p+1)*d]); err != nil {
				_ = c.Truncate(b.Start)
				return fmt.Errorf("kv import: position %d: %w", b.Start+p, err)
			}
		}
	}
	return nil
}

// ShiftKeys moves the block to start at position start: every key is
// rotated by RoPE through the angle of the position difference, as if it
// had been computed there (values carry no position). It changes the
// block in place. The result equals a key rotated at the new position up
// to float32 rounding.
func ShiftKeys(cfg *Config, b *KVBlock, start int) {
	delta := start - b.Start
	b.Start = start
	if delta == 0 {
		return
	}
	freqs := ropeFreqs(cfg)
	half := len(freqs)
	cos := make([]float32, half)
	sin := make([]float32, half)
	for i, f := range freqs {
		// The angle of the difference, formed as the engine forms angles.
		a := float64(float32(delta) * float32(f))
		cos[i], sin[i] = float32(math.Cos(a)), float32(math.Sin(a))
	}
	t := &ropeTable{half: half, cos: cos, sin: sin}
	for l := range b.K {
		d := b.KVDim[l]
		for p := 0; p < b.Len; p++ {
			t.apply(b.K[l][p*d:(p+1)*d], 0, cfg.HeadDim, cfg.RopeStyle)
		}
	}
}

// ReadKV implements KVReader.
func (c *FloatCache) ReadKV(layer, from, to int, k, v []float32) error {
	if layer < 0 || layer >= len(c.k) {
		return fmt.Errorf("kv cache: layer %d of %d", layer, len(c.k))
	}
	d := c.kvDim[layer]
	if from < 0 || to < from || to > c.lens[layer] {
		return fmt.Errorf("kv cache: layer %d: positions [%d, %d) of %d held", layer, from, to, c.lens[layer])
	}
	if len(k) != (to-from)*d || len(v) != (to-from)*d {
		return fmt.Errorf("kv cache: layer %d: buffers of %d and %d floats for %d positions of width %d", layer, len(k), len(v), to-from, d)
	}
	copy(k, c.k[layer][from*d:to*d])
	copy(v, c.v[layer][from*d:to*d])
	return nil
}
