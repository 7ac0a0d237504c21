package kv

import (
	"fmt"

	"github.com/terse-llm/terse/model"
)

// CacheGenFit fits the transform basis a cachegen:…:tFILE cache codes
// in: a PCAFit fed each key before RoPE (rotated back through its
// position's angle, as the cache codes it), the queries as attention
// scores them, and the values as they are. Its Basis is PCAFit's
// WeightedBasis with the key metric carried back through RoPE: an error
// Δk in a key before RoPE at position n moves a score by qᵀ·R_n·Δk, so
// the keys' metric is the mean over key positions n < Ctx of R_nᵀ·Q·R_n
// (Q the second moment of the queries), where WeightedBasis would use Q
// itself; the values' metric is the output projection's (as
// PCAFit.SetOutputMetrics).
type CacheGenFit struct {
	f   *PCAFit
	rt  ropeTable
	ctx int
}

// NewCacheGenFit starts an empty fit for cfg's shape, for windows of ctx
// positions (the key positions the key metric averages over).
func NewCacheGenFit(cfg *model.Config, ctx int) *CacheGenFit {
	return &CacheGenFit{f: NewPCAFit(cfg), rt: ropeTable{cfg: cfg, hd: cfg.HeadDim}, ctx: max(ctx, 1)}
}

// Wrap returns a cache that adds every appended row (keys before RoPE)
// and every scored query to the fit and then passes them on to c. Its
// Append is not safe for concurrent use, as PCAFit.Add.
func (g *CacheGenFit) Wrap(c model.KVCache) model.KVCache {
	return &cgFitCache{KVCache: c, g: g, lens: make([]int, len(g.f.n))}
}

type cgFitCache struct {
	model.KVCache
	g    *CacheGenFit
	lens []int     // per layer: positions appended
	kb   []float32 // the key being added, before RoPE
}

func (c *cgFitCache) Append(layer int, k, v []float32) error {
	if layer < 0 || layer >= len(c.lens) {
		return fmt.Errorf("cachegen fit: layer %d of %d", layer, len(c.lens))
	}
	g := c.g
	c.kb = append(c.kb[:0], k...)
	g.rt.rope(c.kb, len(k), c.lens[layer], 1, true)
	if err := g.f.Add(layer, c.kb, v); err != nil {
		return err
	}
	if err := c.KVCache.Append(layer, k, v); err != nil {
		return err
	}
	c.lens[layer]++
	return nil
}

func (c *cgFitCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
	if err := c.g.f.AddQueries(layer, head, q, qs, nq); err != nil {
		return err
	}
	return c.KVCache.Scores(layer, head, q, qs, nq, n, scale, dst, ds, scratch)
}

func (c *cgFitCache) Truncate(n int) error {
	if err := c.KVCache.Truncate(n); err != nil {
		return err
	}
	for l := range c.lens {
		c.lens[l] = min(c.lens[l], n)
	}
	return nil
}

// Basis computes the fitted basis (see CacheGenFit), the values'
// metric read off m's output projections. It fails as
// PCAFit.WeightedBasis does.
func (g *CacheGenFit) Basis(m *model.Model, modelName string) (*PCABasis, error) {
	f := g.f
	if err := f.SetOutputMetrics(m); err != nil {
		return nil, err
	}
	b, err := f.WeightedBasis(modelName)
	if err != nil {
		return nil, err
	}
	hd := f.hd
	for l := range b.Layers {
		for h := range b.Layers[l] {
			q := make([]float32, hd*hd)
			for i := 0; i < hd; i++ {
				for j := i; j < hd; j++ {
					x := float32(f.qOuter[l][h][i*hd+j] / float64(f.qN[l][h]))
					q[i*hd+j], q[j*hd+i] = x, x
				}
			}
			b.Layers[l][h].K = weightedComponents(f.kSum[l][h], f.kOuter[l][h], f.n[l], hd, g.ropeMetric(q))
		}
	}
	return b, nil
}

// ropeMetric is the mean over positions n < ctx of R_nᵀ·q·R_n, q a
// symmetric hd×hd matrix (row-major), R_n RoPE's rotation of position n.
func (g *CacheGenFit) ropeMetric(q []float32) []float64 {
	hd := g.rt.hd
	out := make([]float64, hd*hd)
	a, t := make([]float32, hd*hd), make([]float32, hd*hd)
	for n := 0; n < g.ctx; n++ {
		copy(a, q)
		for i := 0; i < hd; i++ { // rows: a·R (row i becomes R_nᵀ·aᵢ)
			g.rt.rope(a[i*hd:(i+1)*hd], hd, n, 1, true)
		}
		for i := 0; i < hd; i++ {
			for j := 0; j < hd; j++ {
				t[j*hd+i] = a[i*hd+j]
			}
		}
		for i := 0; i < hd; i++ { // (a·R)ᵀ·R = Rᵀ·q·R
			g.rt.rope(t[i*hd:(i+1)*hd], hd, n, 1, true)
		}
		for i, x := range t {
			out[i] += float64(x)
		}
	}
	for i := range out {
		out[i] /= float64(g.ctx)
	}
	return out
}
