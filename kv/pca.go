package kv

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
)

// PCABasis is a set of principal-component channel projections of a
// model's keys and values, fitted on calibration text (PCAFit): per layer
// and KV head, the mean key and value and the orthonormal principal
// directions in order of decreasing variance. A pca cache keeps each key
// and value as its coordinates along the leading directions.
type PCABasis struct {
	// Model names the checkpoint the basis was fitted on (informational).
	Model string `json:"model,omitempty"`
	// HeadDim is the width of one head's key and value.
	HeadDim int `json:"head_dim"`
	// Positions is the number of key/value rows per head fitted.
	Positions int64 `json:"positions"`
	// Layers holds, per layer, one entry per KV head.
	Layers [][]PCAHead `json:"layers"`
}

// PCAHead is one KV head's fitted projections.
type PCAHead struct {
	K PCAComponents `json:"k"`
	V PCAComponents `json:"v"`
}

// PCAComponents are the mean and the principal directions of one set of
// rows (a head's keys or its values).
type PCAComponents struct {
	Mean []float32 `json:"mean"`
	// Dirs are HeadDim orthonormal directions, each HeadDim floats, in
	// order of decreasing Var.
	Dirs [][]float32 `json:"dirs"`
	// Var is the variance of the rows along each direction.
	Var []float64 `json:"var"`
	// Back, when present, are the directions a row is rebuilt from (x ≈
	// mean + Σ z_i·Back_i, z_i = Dirs_i·(x − mean)), HeadDim rows of
	// HeadDim floats with Dirs_i·Back_j = δ_ij; absent, they are Dirs (an
	// orthonormal basis). A weighted fit (PCAFit.WeightedBasis) has them.
	Back [][]float32 `json:"back,omitempty"`
}

// ReadPCABasis reads a basis written by PCABasis.Write.
func ReadPCABasis(path string) (*PCABasis, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pca basis: %w", err)
	}
	b := &PCABasis{}
	if err := json.Unmarshal(raw, b); err != nil {
		return nil, fmt.Errorf("pca basis %s: %w", path, err)
	}
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("pca basis %s: %w", path, err)
	}
	return b, nil
}

// Write stores the basis as JSON.
func (b *PCABasis) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	return enc.Encode(b)
}

// check reports whether the basis is well formed: every head has a mean
// and HeadDim directions of HeadDim finite floats.
func (b *PCABasis) check() error {
	if b.HeadDim < 1 || b.HeadDim > 1<<12 {
		return fmt.Errorf("head_dim %d", b.HeadDim)
	}
	if len(b.Layers) == 0 {
		return fmt.Errorf("no layers")
	}
	hd := b.HeadDim
	for l, heads := range b.Layers {
		if len(heads) == 0 {
			return fmt.Errorf("layer %d: no heads", l)
		}
		for h := range heads {
			for _, pc := range []struct {
				name string
				c    *PCAComponents
			}{{"k", &heads[h].K}, {"v", &heads[h].V}} {
				c := pc.c
				if len(c.Mean) != hd || len(c.Dirs) != hd || len(c.Var) != hd {
					return fmt.Errorf("layer %d head %d %s: %d mean floats, %d directions, %d variances, want %d each", l, h, pc.name, len(c.Mean), len(c.Dirs), len(c.Var), hd)
				}
				for i, d := range c.Dirs {
					if len(d) != hd {
						return fmt.Errorf("layer %d head %d %s: direction %d of %d floats, want %d", l, h, pc.name, i, len(d), hd)
					}
					for _, x := range d {
						if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
							return fmt.Errorf("layer %d head %d %s: direction %d is not finite", l, h, pc.name, i)
						}
					}
				}
				for _, x := range c.Mean {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						return fmt.Errorf("layer %d head %d %s: mean is not finite", l, h, pc.name)
					}
				}
				if c.Back != nil && len(c.Back) != hd {
					return fmt.Errorf("layer %d head %d %s: %d back directions, want %d", l, h, pc.name, len(c.Back), hd)
				}
				for i, d := range c.Back {
					if len(d) != hd {
						return fmt.Errorf("layer %d head %d %s: back direction %d of %d floats, want %d", l, h, pc.name, i, len(d), hd)
					}
					for _, x := range d {
						if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
							return fmt.Errorf("layer %d head %d %s: back direction %d is not finite", l, h, pc.name, i)
						}
					}
				}
			}
		}
	}
	return nil
}

// fits reports whether the basis suits cfg's shape.
func (b *PCABasis) fits(cfg *model.Config) error {
	if b.HeadDim != cfg.HeadDim {
		return fmt.Errorf("basis head_dim %d, model %d", b.HeadDim, cfg.HeadDim)
	}
	if len(b.Layers) != cfg.NLayers {
		return fmt.Errorf("basis of %d layers, model has %d", len(b.Layers), cfg.NLayers)
	}
	for l := range b.Layers {
		if heads := cfg.KVDim(l) / cfg.HeadDim; len(b.Layers[l]) != heads {
			return fmt.Errorf("layer %d: basis of %d KV heads, model has %d", l, len(b.Layers[l]), heads)
		}
	}
	return nil
}

// PCAFit accumulates the keys and values a model appends to its caches
// (through the caches Wrap returns) and fits their principal components.
// Add is not safe for concurrent use (the engine appends from one
// goroutine); AddQueries is (heads are scored concurrently).
type PCAFit struct {
	hd           int
	n            []int64       // per layer: rows seen per head
	kSum, vSum   [][][]float64 // per layer, head: Σ x
	kOuter, vOut [][][]float64 // per layer, head: Σ x·xᵀ (hd·hd)
	qOuter       [][][]float64 // per layer, KV head: Σ q·qᵀ over the queries scored against it
	qN           [][]int64     // per layer, KV head: queries seen
	qMu          []sync.Mutex  // per layer: guards qOuter and qN (heads score concurrently)
	vMetric      [][][]float64 // per layer, KV head: the value metric (SetValueMetric), or nil
}

// NewPCAFit starts an empty fit for cfg's shape.
func NewPCAFit(cfg *model.Config) *PCAFit {
	f := &PCAFit{hd: cfg.HeadDim, n: make([]int64, cfg.NLayers)}
	mk := func() [][][]float64 { return make([][][]float64, cfg.NLayers) }
	f.kSum, f.vSum, f.kOuter, f.vOut, f.qOuter, f.vMetric = mk(), mk(), mk(), mk(), mk(), mk()
	f.qN, f.qMu = make([][]int64, cfg.NLayers), make([]sync.Mutex, cfg.NLayers)
	for l := 0; l < cfg.NLayers; l++ {
		heads := cfg.KVDim(l) / cfg.HeadDim
		f.qN[l], f.vMetric[l], f.qOuter[l] = make([]int64, heads), make([][]float64, heads), make([][]float64, heads)
		for h := range f.qOuter[l] {
			f.qOuter[l][h] = make([]float64, f.hd*f.hd)
		}
		for _, s := range [][][][]float64{f.kSum, f.vSum} {
			s[l] = make([][]float64, heads)
			for h := range s[l] {
				s[l][h] = make([]float64, f.hd)
			}
		}
		for _, s := range [][][][]float64{f.kOuter, f.vOut} {
			s[l] = make([][]float64, heads)
			for h := range s[l] {
				s[l][h] = make([]float64, f.hd*f.hd)
			}
		}
	}
	return f
}

// Add accumulates one position's key and value rows of a layer.
func (f *PCAFit) Add(layer int, k, v []float32) error {
	if layer < 0 || layer >= len(f.n) {
		return fmt.Errorf("pca fit: layer %d of %d", layer, len(f.n))
	}
	heads := len(f.kSum[layer])
	if len(k) != heads*f.hd || len(v) != heads*f.hd {
		return fmt.Errorf("pca fit: layer %d: rows of %d and %d floats, want %d", layer, len(k), len(v), heads*f.hd)
	}
	hd := f.hd
	for h := 0; h < heads; h++ {
		for _, a := range []struct {
			x        []float32
			sum, out []float64
		}{{k[h*hd : (h+1)*hd], f.kSum[layer][h], f.kOuter[layer][h]}, {v[h*hd : (h+1)*hd], f.vSum[layer][h], f.vOut[layer][h]}} {
			for i, xi := range a.x {
				a.sum[i] += float64(xi)
				row := a.out[i*hd : (i+1)*hd]
				for j := i; j < hd; j++ { // upper triangle; mirrored in Basis
					row[j] += float64(xi) * float64(a.x[j])
				}
			}
		}
	}
	f.n[layer]++
	return nil
}

// Wrap returns a cache that adds every appended row to the fit and then
// stores it in c.
func (f *PCAFit) Wrap(c model.KVCache) model.KVCache { return &fitCache{KVCache: c, f: f} }

type fitCache struct {
	model.KVCache
	f *PCAFit
}

func (c *fitCache) Append(layer int, k, v []float32) error {
	if err := c.f.Add(layer, k, v); err != nil {
		return err
	}
	return c.KVCache.Append(layer, k, v)
}

// Scores adds the queries to the fit's query moments and scores them.
func (c *fitCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
	if err := c.f.AddQueries(layer, head, q, qs, nq); err != nil {
		return err
	}
	return c.KVCache.Scores(layer, head, q, qs, nq, n, scale, dst, ds, scratch)
}

// AddQueries accumulates the second moment of nq queries (qs floats
// apart in q, head_dim each) scored against KV head head of a layer.
func (f *PCAFit) AddQueries(layer, head int, q []float32, qs, nq int) error {
	if layer < 0 || layer >= len(f.n) || head < 0 || head >= len(f.qOuter[layer]) {
		return fmt.Errorf("pca fit: layer %d KV head %d out of range", layer, head)
	}
	hd := f.hd
	if nq > 0 && len(q) < (nq-1)*qs+hd {
		return fmt.Errorf("pca fit: layer %d: %d queries in %d floats", layer, nq, len(q))
	}
	f.qMu[layer].Lock()
	defer f.qMu[layer].Unlock()
	out := f.qOuter[layer][head]
	for j := 0; j < nq; j++ {
		x := q[j*qs : j*qs+hd]
		for i, xi := range x {
			row := out[i*hd : (i+1)*hd]
			for k := i; k < hd; k++ {
				row[k] += float64(xi) * float64(x[k])
			}
		}
	}
	f.qN[layer][head] += int64(nq)
	return nil
}

// SetValueMetric sets the metric a weighted fit measures KV head head's
// value errors in: the symmetric positive semi-definite hd×hd matrix m
// (row-major), Δvᵀ·m·Δv the cost of an error Δv. For attention, Σ_h
// W_o,hᵀ·W_o,h over the query heads h that read the KV head (W_o,h the
// output projection's columns of head h) is the squared size of the error
// it adds to the residual stream.
func (f *PCAFit) SetValueMetric(layer, head int, m []float64) error {
	if layer < 0 || layer >= len(f.n) || head < 0 || head >= len(f.vMetric[layer]) {
		return fmt.Errorf("pca fit: layer %d KV head %d out of range", layer, head)
	}
	if len(m) != f.hd*f.hd {
		return fmt.Errorf("pca fit: layer %d KV head %d: value metric of %d floats, want %d", layer, head, len(m), f.hd*f.hd)
	}
	f.vMetric[layer][head] = append([]float64(nil), m...)
	return nil
}

// Basis computes the principal components of the rows added so far. It
// fails when a layer has seen fewer than two rows.
func (f *PCAFit) Basis(modelName string) (*PCABasis, error) {
	b := &PCABasis{Model: modelName, HeadDim: f.hd, Layers: make([][]PCAHead, len(f.n))}
	for l, n := range f.n {
		if n < 2 {
			return nil, fmt.Errorf("pca fit: layer %d: %d rows seen, need at least 2", l, n)
		}
		if b.Positions == 0 || n < b.Positions {
			b.Positions = n
		}
		b.Layers[l] = make([]PCAHead, len(f.kSum[l]))
		for h := range b.Layers[l] {
			b.Layers[l][h].K = components(f.kSum[l][h], f.kOuter[l][h], n, f.hd)
			b.Layers[l][h].V = components(f.vSum[l][h], f.vOut[l][h], n, f.hd)
		}
	}
	return b, nil
}

// WeightedBasis is Basis with each head's directions fitted for the error
// that matters downstream instead of the plain squared error: for keys
// the error of the scores, Δkᵀ·E[q·qᵀ]·Δk over the queries scored
// against the head (AddQueries, through Wrap's Scores), for values
// Δvᵀ·M·Δv with M the head's value metric (SetValueMetric; the identity
// where none was set). With G that metric (plus 10⁻⁴ of its mean
// eigenvalue, so that it is invertible), the rows are mapped by G^½ and
// the principal components taken there: Dirs_i = G^½·u_i, Back_i =
// G^−½·u_i and Var_i = λ_i for the eigenpairs (λ_i, u_i) of G^½·C·G^½ (C
// the rows' covariance). A coordinate's share of the weighted error is then
// its variance, so Var orders directions and bits (reverse water-filling)
// by what they cost downstream. It fails as Basis does, and when a layer's
// head has had no queries.
func (f *PCAFit) WeightedBasis(modelName string) (*PCABasis, error) {
	b, err := f.Basis(modelName)
	if err != nil {
		return nil, err
	}
	hd := f.hd
	for l := range b.Layers {
		for h := range b.Layers[l] {
			n := f.qN[l][h]
			if n == 0 {
				return nil, fmt.Errorf("pca fit: layer %d KV head %d: no queries seen", l, h)
			}
			qm := make([]float64, hd*hd)
			for i := 0; i < hd; i++ {
				for j := i; j < hd; j++ {
					x := f.qOuter[l][h][i*hd+j] / float64(n)
					qm[i*hd+j], qm[j*hd+i] = x, x
				}
			}
			vm := f.vMetric[l][h]
			if vm == nil {
				vm = make([]float64, hd*hd)
				for i := 0; i < hd; i++ {
					vm[i*hd+i] = 1
				}
			}
			b.Layers[l][h].K = weightedComponents(f.kSum[l][h], f.kOuter[l][h], f.n[l], hd, qm)
			b.Layers[l][h].V = weightedComponents(f.vSum[l][h], f.vOut[l][h], f.n[l], hd, vm)
		}
	}
	return b, nil
}

// weightedComponents is components in the metric g (hd×hd, symmetric
// positive semi-definite; see WeightedBasis).
func weightedComponents(sum, outer []float64, n int64, hd int, g []float64) PCAComponents {
	mean := make([]float64, hd)
	for i := range mean {
		mean[i] = sum[i] / float64(n)
	}
	cov := make([]float64, hd*hd)
	for i := 0; i < hd; i++ {
		for j := i; j < hd; j++ {
			c := outer[i*hd+j]/float64(n) - mean[i]*mean[j]
			cov[i*hd+j], cov[j*hd+i] = c, c
		}
	}
	// G^½ and G^−½ from G's eigenpairs, the small ones lifted.
	gv, ge := symEigen(append([]float64(nil), g...), hd)
	var tr float64
	for _, x := range gv {
		tr += max(x, 0)
	}
	floor := 1e-4 * tr / float64(hd)
	if floor == 0 {
		floor = 1
	}
	half, inv := make([]float64, hd*hd), make([]float64, hd*hd)
	for k, x := range gv {
		x = max(x, 0) + floor
		sq := math.Sqrt(x)
		for i := 0; i < hd; i++ {
			ei := ge[i*hd+k]
			for j := 0; j < hd; j++ {
				half[i*hd+j] += sq * ei * ge[j*hd+k]
				inv[i*hd+j] += ei * ge[j*hd+k] / sq
			}
		}
	}
	// C' = G^½·C·G^½.
	cw := matMul(matMul(half, cov, hd), half, hd)
	for i := 0; i < hd; i++ { // exact symmetry for Jacobi
		for j := i + 1; j < hd; j++ {
			x := (cw[i*hd+j] + cw[j*hd+i]) / 2
			cw[i*hd+j], cw[j*hd+i] = x, x
		}
	}
	vals, vecs := symEigen(cw, hd)
	order := make([]int, hd)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	pc := PCAComponents{Mean: make([]float32, hd), Dirs: make([][]float32, hd), Back: make([][]float32, hd), Var: make([]float64, hd)}
	for i, m := range mean {
		pc.Mean[i] = float32(m)
	}
	for r, k := range order {
		pc.Var[r] = max(0, vals[k])
		d, bk := make([]float32, hd), make([]float32, hd)
		for i := 0; i < hd; i++ {
			var a, c float64
			for j := 0; j < hd; j++ {
				u := vecs[j*hd+k]
				a += half[i*hd+j] * u
				c += inv[i*hd+j] * u
			}
			d[i], bk[i] = float32(a), float32(c)
		}
		pc.Dirs[r], pc.Back[r] = d, bk
	}
	return pc
}

// matMul is the product of two n×n row-major matrices.
func matMul(a, b []float64, n int) []float64 {
	out := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for k := 0; k < n; k++ {
			x := a[i*n+k]
			for j := 0; j < n; j++ {
				out[i*n+j] += x * b[k*n+j]
			}
		}
	}
	return out
}

// components turns the sums of n rows into their mean and the
// eigenvectors of their covariance, by decreasing eigenvalue.
func components(sum, outer []float64, n int64, hd int) PCAComponents {
	mean := make([]float64, hd)
	for i := range mean {
		mean[i] = sum[i] / float64(n)
	}
	cov := make([]float64, hd*hd)
	for i := 0; i < hd; i++ {
		for j := i; j < hd; j++ {
			c := outer[i*hd+j]/float64(n) - mean[i]*mean[j]
			cov[i*hd+j], cov[j*hd+i] = c, c
		}
	}
	vals, vecs := symEigen(cov, hd)
	order := make([]int, hd)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	pc := PCAComponents{Mean: make([]float32, hd), Dirs: make([][]float32, hd), Var: make([]float64, hd)}
	for i, m := range mean {
		pc.Mean[i] = float32(m)
	}
	for r, i := range order {
		pc.Var[r] = max(0, vals[i])
		d := make([]float32, hd)
		for j := range d {
			d[j] = float32(vecs[j*hd+i]) // column i
		}
		pc.Dirs[r] = d
	}
	return pc
}

// symEigen diagonalizes the symmetric n×n matrix a (row-major, destroyed)
// by cyclic Jacobi rotations: it returns the eigenvalues and a matrix whose
// column i is the unit eigenvector of eigenvalue i.
func symEigen(a []float64, n int) (vals, vecs []float64) {
	vecs = make([]float64, n*n)
	for i := 0; i < n; i++ {
		vecs[i*n+i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		var off, diag float64
		for i := 0; i < n; i++ {
			diag += a[i*n+i] * a[i*n+i]
			for j := i + 1; j < n; j++ {
				off += a[i*n+j] * a[i*n+j]
			}
		}
		if off <= 1e-30*diag || off == 0 {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				apq := a[p*n+q]
				if apq == 0 {
					continue
				}
				theta := (a[q*n+q] - a[p*n+p]) / (2 * apq)
				t := 1 / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				if theta < 0 {
					t = -t
				}
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < n; k++ { // columns p, q of a·J
					akp, akq := a[k*n+p], a[k*n+q]
					a[k*n+p], a[k*n+q] = c*akp-s*akq, s*akp+c*akq
				}
				for k := 0; k < n; k++ { // rows p, q of Jᵀ·a
					apk, aqk := a[p*n+k], a[q*n+k]
					a[p*n+k], a[q*n+k] = c*apk-s*aqk, s*apk+c*aqk
				}
				for k := 0; k < n; k++ {
					vkp, vkq := vecs[k*n+p], vecs[k*n+q]
					vecs[k*n+p], vecs[k*n+q] = c*vkp-s*vkq, s*vkp+c*vkq
				}
			}
		}
	}
	vals = make([]float64, n)
	for i := range vals {
		vals[i] = a[i*n+i]
	}
	return vals, vecs
}

// pcaCache keeps each key and value of a head as its binary16 coordinates
// along the leading rk (keys) and rv (values) principal directions of a
// fitted basis: k ≈ μ_k + Σ_i z_i·d_i. Scores project the query once
// (q·k ≈ q·μ_k + (Dq)·z) and score it against the stored coordinates;
// WeightedSum sums the coordinates and maps the sum back (Σ w·v ≈
// (Σ w)·μ_v + Dᵀ·Σ w·z).
type pcaCache struct {
	sp        Spec
	cap, hd   int
	rk, rv    int
	kvDim     []int
	lens      []int
	basis     [][]pcaHead // per layer, KV head
	kz, vz    [][]byte    // per layer: heads × cap coded rows (kRowB, vRowB bytes)
	kRowB     []int       // per layer
	vRowB     []int
	sinks     int      // leading positions kept as binary16 rows
	sk, sv    [][]byte // per layer: heads × sinks binary16 rows of hd
	tmp       []float32
	zero      []float32 // hd zeros: the mean a query is projected about
	projBytes int64
}

// pcaHead is one head's leading directions, flattened: dk is rk rows of
// hd floats, dv rv rows; and the coders of its coordinates.
type pcaHead struct {
	mk, mv []float32
	dk, dv []float32
	bk, bv []float32 // the back directions (dk, dv for an orthonormal basis)
	ck, cv coordCoder
}

// coordCoder stores a row of r coordinates: as binary16 (bits nil), or
// each coordinate i quantized to bits[i] bits with a uniform quantizer of
// step step[i] centred on 0 (bits 0: the coordinate is dropped), packed
// LSB first.
type coordCoder struct {
	r    int
	rowB int
	bits []uint8
	step []float32
	// lloyd: each coordinate's code is the Lloyd–Max level (lmBook) of
	// z/step nearest it, step its fitted standard deviation.
	lloyd bool
	// The decoder's tables, for the coordinates with bits (act): the byte
	// offset of the code, its shift and mask within the 16 bits there,
	// and where its levels start in lut (the value of every code).
	act, off, base []int32
	sh             []uint8
	mask           []uint16
	lut            []float32
}

// gaussStep is the step, in standard deviations, of the uniform quantizer
// of b bits with least mean squared error on a Gaussian (Max 1960).
var gaussStep = [9]float64{0, 1.596, 0.9957, 0.586, 0.3352, 0.1881, 0.1041, 0.0569, 0.0308}

// newCoordCoder is the binary16 coder of r coordinates (avg ≤ 0), or one
// that spends round(avg·hd) bits on them, given bit by bit to the
// coordinate whose quantization error (variance·4^−bits) is largest, at
// most 8 each.
//
// With lloyd, coordinates are coded with the Lloyd–Max codebook of their
// bits, scaled by their fitted standard deviation.
func newCoordCoder(r, hd int, avg float64, variance []float64, lloyd bool) coordCoder {
	if avg <= 0 {
		return coordCoder{r: r, rowB: 2 * r}
	}
	cc := coordCoder{r: r, bits: make([]uint8, r), step: make([]float32, r)}
	total := int(math.Round(avg * float64(hd)))
	errs := make([]float64, r)
	for i := range errs {
		errs[i] = max(variance[i], 1e-30)
	}
	for n := 0; n < total; n++ {
		best := -1
		for i, e := range errs {
			if cc.bits[i] < 8 && (best < 0 || e > errs[best]) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		cc.bits[best]++
		errs[best] /= 4
	}
	var used int
	for i, b := range cc.bits {
		used += int(b)
		cc.step[i] = float32(gaussStep[b] * math.Sqrt(max(variance[i], 0)))
		if lloyd {
			cc.step[i] = float32(math.Sqrt(max(variance[i], 0)))
		}
	}
	cc.lloyd = lloyd
	pos := 0
	for i, b := range cc.bits {
		if b == 0 {
			continue
		}
		cc.act, cc.off, cc.base = append(cc.act, int32(i)), append(cc.off, int32(pos>>3)), append(cc.base, int32(len(cc.lut)))
		cc.sh, cc.mask = append(cc.sh, uint8(pos&7)), append(cc.mask, uint16(1)<<b-1)
		for q := 0; q < 1<<b; q++ {
			if lloyd {
				cc.lut = append(cc.lut, lmBook(int(b)).level[q]*cc.step[i])
			} else {
				cc.lut = append(cc.lut, (float32(q-(1<<b)/2)+0.5)*cc.step[i])
			}
		}
		pos += int(b)
	}
	cc.rowB = (used + 7) / 8
	return cc
}

// encode stores the coordinates z into dst (rowB bytes).
func (cc *coordCoder) encode(dst []byte, z []float32) {
	if cc.bits == nil {
		putF16Row(dst, z)
		return
	}
	clear(dst)
	pos := 0
	for i, x := range z {
		b := int(cc.bits[i])
		if b == 0 {
			continue
		}
		levels := 1 << b
		q := 0
		switch {
		case cc.lloyd && cc.step[i] > 0:
			q = lmBook(b).index(x / cc.step[i])
		case cc.step[i] > 0:
			q = int(math.Floor(float64(x/cc.step[i]))) + levels/2
		}
		q = max(0, min(levels-1, q))
		for j := 0; j < b; j++ {
			if q>>j&1 != 0 {
				dst[(pos+j)/8] |= 1 << ((pos + j) % 8)
			}
		}
		pos += b
	}
}

// decode sets z (r floats) to the coordinates stored in src. Given a
// byte past the row (len(src) > rowB), it reads each code's two bytes at
// once through the tables.
func (cc *coordCoder) decode(z []float32, src []byte) {
	if cc.bits == nil {
		kernel.F16ToF32Row(z, src[:2*cc.r])
		return
	}
	if len(src) > cc.rowB {
		src = src[:cc.rowB+1]
		clear(z)
		for j, i := range cc.act {
			o := cc.off[j]
			w := (uint16(src[o]) | uint16(src[o+1])<<8) >> cc.sh[j] & cc.mask[j]
			z[i] = cc.lut[cc.base[j]+int32(w)]
		}
		return
	}
	pos := 0
	for i := range z {
		b := int(cc.bits[i])
		if b == 0 {
			z[i] = 0
			continue
		}
		o := pos >> 3 // b ≤ 8: the code spans at most two bytes
		w := uint(src[o])
		if o+1 < len(src) {
			w |= uint(src[o+1]) << 8
		}
		q := int(w >> (pos & 7) & (1<<b - 1))
		pos += b
		if cc.lloyd {
			z[i] = lmBook(b).level[q] * cc.step[i]
			continue
		}
		z[i] = (float32(q-(1<<b)/2) + 0.5) * cc.step[i]
	}
}

// decodeRows widens m consecutive coded rows of src into buf (m·r floats).
func (cc *coordCoder) decodeRows(buf []float32, src []byte, m int) {
	if cc.bits == nil {
		kernel.F16ToF32Row(buf[:m*cc.r], src[:m*cc.rowB])
		return
	}
	for p := 0; p < m; p++ {
		cc.decode(buf[p*cc.r:(p+1)*cc.r], src[p*cc.rowB:]) // src holds a byte past the last row
	}
}

// layerBits is a pca cache's average bits per channel at layer l: b plus
// the layer's offset, at least one bit per row (b ≤ 0, binary16
// coordinates, is left alone).
func layerBits(b float64, offsets []float64, l, hd int) float64 {
	if b <= 0 || offsets == nil {
		return b
	}
	return min(8, max(1/float64(hd), b+offsets[l]))
}

// pcaRank is how many of hd directions a fraction keeps: round(f·hd),
// at least 1.
func pcaRank(f float64, hd int) int { return max(1, min(hd, int(math.Round(f*float64(hd))))) }

func newPCACache(cfg *model.Config, positions int, sp *Spec) (*pcaCache, error) {
	if sp.pca == nil {
		return nil, fmt.Errorf("kv %s: no basis loaded", sp)
	}
	if err := sp.pca.fits(cfg); err != nil {
		return nil, fmt.Errorf("kv %s: %s: %w", sp, sp.PCAFile, err)
	}
	hd := cfg.HeadDim
	c := &pcaCache{sp: *sp, cap: positions, hd: hd, rk: pcaRank(sp.PCAK, hd), rv: pcaRank(sp.PCAV, hd),
		kvDim: make([]int, cfg.NLayers), lens: make([]int, cfg.NLayers), basis: make([][]pcaHead, cfg.NLayers),
		kz: make([][]byte, cfg.NLayers), vz: make([][]byte, cfg.NLayers), tmp: make([]float32, 2*hd), zero: make([]float32, hd),
		sinks: min(sp.PCASinks, positions), sk: make([][]byte, cfg.NLayers), sv: make([][]byte, cfg.NLayers),
		kRowB: make([]int, cfg.NLayers), vRowB: make([]int, cfg.NLayers)}
	if sp.PCALayerBits != nil && len(sp.PCALayerBits) != cfg.NLayers {
		return nil, fmt.Errorf("kv %s: %d per-layer bit offsets for %d layers", sp, len(sp.PCALayerBits), cfg.NLayers)
	}
	for l := range c.kvDim {
		c.kvDim[l] = cfg.KVDim(l)
		heads := c.kvDim[l] / hd
		c.basis[l] = make([]pcaHead, heads)
		for h := range c.basis[l] {
			src := &sp.pca.Layers[l][h]
			ph := pcaHead{mk: src.K.Mean, mv: src.V.Mean, dk: make([]float32, c.rk*hd), dv: make([]float32, c.rv*hd),
				ck: newCoordCoder(c.rk, hd, layerBits(sp.PCABits, sp.PCALayerBits, l, hd), src.K.Var, sp.PCALloyd),
				cv: newCoordCoder(c.rv, hd, layerBits(sp.PCAVBits, sp.PCALayerBits, l, hd), src.V.Var, sp.PCALloyd)}
			if h > 0 && (ph.ck.rowB != c.basis[l][0].ck.rowB || ph.cv.rowB != c.basis[l][0].cv.rowB) {
				return nil, fmt.Errorf("kv %s: layer %d: heads coded in rows of different sizes", sp, l)
			}
			for i := 0; i < c.rk; i++ {
				copy(ph.dk[i*hd:], src.K.Dirs[i])
			}
			for i := 0; i < c.rv; i++ {
				copy(ph.dv[i*hd:], src.V.Dirs[i])
			}
			ph.bk, ph.bv = ph.dk, ph.dv
			if src.K.Back != nil {
				ph.bk = make([]float32, c.rk*hd)
				for i := 0; i < c.rk; i++ {
					copy(ph.bk[i*hd:], src.K.Back[i])
				}
				c.projBytes += 4 * int64(len(ph.bk))
			}
			if src.V.Back != nil {
				ph.bv = make([]float32, c.rv*hd)
				for i := 0; i < c.rv; i++ {
					copy(ph.bv[i*hd:], src.V.Back[i])
				}
				c.projBytes += 4 * int64(len(ph.bv))
			}
			c.basis[l][h] = ph
			c.projBytes += 4 * int64(len(ph.mk)+len(ph.mv)+len(ph.dk)+len(ph.dv))
		}
		c.kRowB[l], c.vRowB[l] = c.basis[l][0].ck.rowB, c.basis[l][0].cv.rowB
		// One byte of slack past the last row lets the decoder read every
		// code as two bytes.
		c.kz[l], c.vz[l] = make([]byte, heads*positions*c.kRowB[l]+1), make([]byte, heads*positions*c.vRowB[l]+1)
		c.sk[l], c.sv[l] = make([]byte, heads*c.sinks*hd*2), make([]byte, heads*c.sinks*hd*2)
	}
	return c, nil
}

// project sets z[i] = d_i·(x − μ) for the r directions d (r rows of hd).
func project(z, x, mean, d []float32, hd int) {
	for i := range z {
		var s float32
		row := d[i*hd : (i+1)*hd]
		for j, xj := range x {
			s += row[j] * (xj - mean[j])
		}
		z[i] = s
	}
}

// unproject sets x = μ·m + Σ_i z_i·d_i (m is the weight of the mean).
func unproject(x, z, mean, d []float32, m float32, hd int) {
	for j := range x {
		x[j] = m * mean[j]
	}
	for i, zi := range z {
		row := d[i*hd : (i+1)*hd]
		for j := range x {
			x[j] += zi * row[j]
		}
	}
}

// Append implements model.KVCache.
func (c *pcaCache) Append(layer int, k, v []float32) error {
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
	hd := c.hd
	for h := 0; h < d/hd; h++ {
		b := &c.basis[layer][h]
		z := c.tmp[:c.rk]
		project(z, k[h*hd:(h+1)*hd], b.mk, b.dk, hd)
		b.ck.encode(c.kRow(layer, h, pos), z)
		z = c.tmp[:c.rv]
		project(z, v[h*hd:(h+1)*hd], b.mv, b.dv, hd)
		b.cv.encode(c.vRow(layer, h, pos), z)
		if pos < c.sinks {
			putF16Row(c.sinkRow(c.sk[layer], h, pos), k[h*hd:(h+1)*hd])
			putF16Row(c.sinkRow(c.sv[layer], h, pos), v[h*hd:(h+1)*hd])
		}
	}
	c.lens[layer]++
	return nil
}

// sinkRow is head h's binary16 row of sink position p in a layer's sink
// store s.
func (c *pcaCache) sinkRow(s []byte, h, p int) []byte {
	off := (h*c.sinks + p) * c.hd * 2
	return s[off : off+c.hd*2]
}

func (c *pcaCache) kRow(layer, h, p int) []byte {
	off := (h*c.cap + p) * c.kRowB[layer]
	return c.kz[layer][off : off+c.kRowB[layer]]
}

func (c *pcaCache) vRow(layer, h, p int) []byte {
	off := (h*c.cap + p) * c.vRowB[layer]
	return c.vz[layer][off : off+c.vRowB[layer]]
}

func (c *pcaCache) check(layer, head, n int) error {
	return checkAccess(&c.sp, c.kvDim, c.lens, c.hd, layer, head, n)
}

// Scores implements model.KVCache in the projected space: each query is
// projected onto the key directions once and scored against a chunk of
// widened coordinates at a time.
func (c *pcaCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
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
	b := &c.basis[layer][head]
	// Up to pcaQueries projected queries at a time, each chunk of coded
	// rows decoded once for all of them.
	qz, buf := scratch[:pcaQueries*c.rk], scratch[pcaQueries*c.rk:pcaQueries*c.rk+wsChunk*max(c.rk, c.hd)]
	store := c.kz[layer][head*c.cap*c.kRowB[layer]:]
	for i0 := 0; i0 < nq; i0 += pcaQueries {
		m := min(pcaQueries, nq-i0)
		for i := 0; i < m; i++ {
			project(qz[i*c.rk:(i+1)*c.rk], q[(i0+i)*qs:(i0+i)*qs+c.hd], c.zero, b.bk, c.hd)
		}
		for p0 := 0; p0 < n; p0 += wsChunk {
			k := min(wsChunk, n-p0)
			b.ck.decodeRows(buf, store[p0*c.kRowB[layer]:], k)
			kernel.Scores(dst[i0*ds+p0:], ds, qz, c.rk, m, buf, c.rk, k, c.rk, scale)
		}
		for i := i0; i < i0+m; i++ {
			qi := q[i*qs : i*qs+c.hd]
			var base float32
			for j, x := range qi {
				base += x * b.mk[j]
			}
			row := dst[i*ds : i*ds+n]
			for p := range row {
				row[p] += scale * base
			}
			if ns := min(c.sinks, n); ns > 0 {
				kernel.F16ToF32Row(buf[:ns*c.hd], c.sk[layer][head*c.sinks*c.hd*2:(head*c.sinks+ns)*c.hd*2])
				kernel.Scores(row, n, qi, c.hd, 1, buf, c.hd, ns, c.hd, scale)
			}
		}
	}
	return nil
}

// pcaQueries is how many projected queries a pca cache's Scores holds at
// once.
const pcaQueries = 4

// WeightedSum implements model.KVCache: the weighted sum of the value
// coordinates, mapped back through the value directions once.
func (c *pcaCache) WeightedSum(layer, head int, w, dst []float32, scratch []float32) error {
	if err := c.check(layer, head, len(w)); err != nil {
		return err
	}
	if len(dst) != c.hd {
		return fmt.Errorf("kv %s: layer %d: output of %d floats for head_dim %d", &c.sp, layer, len(dst), c.hd)
	}
	if len(scratch) < c.ScratchSize() {
		return fmt.Errorf("kv %s: scratch of %d floats, want %d", &c.sp, len(scratch), c.ScratchSize())
	}
	b := &c.basis[layer][head]
	acc, part, buf := scratch[:c.rv], scratch[c.hd:c.hd+c.rv], scratch[2*c.hd:2*c.hd+wsChunk*c.rv]
	clear(acc)
	var wsum float32
	store := c.vz[layer][head*c.cap*c.vRowB[layer]:]
	ns := min(c.sinks, len(w))
	for p0 := ns; p0 < len(w); p0 += wsChunk {
		m := min(wsChunk, len(w)-p0)
		b.cv.decodeRows(buf, store[p0*c.vRowB[layer]:], m)
		kernel.WeightedSum(part, w[p0:p0+m], buf, c.rv)
		for j, x := range part {
			acc[j] += x
		}
		for _, x := range w[p0 : p0+m] {
			wsum += x
		}
	}
	unproject(dst, acc, b.mv, b.bv, wsum, c.hd)
	if ns > 0 {
		kernel.F16ToF32Row(buf[:ns*c.hd], c.sv[layer][head*c.sinks*c.hd*2:(head*c.sinks+ns)*c.hd*2])
		kernel.WeightedSum(part[:c.hd], w[:ns], buf, c.hd)
		for j, x := range part[:c.hd] {
			dst[j] += x
		}
	}
	return nil
}

// Truncate implements model.KVCache.
func (c *pcaCache) Truncate(n int) error {
	if n < 0 || n > c.Len() {
		return fmt.Errorf("kv %s: truncate to %d of %d positions", &c.sp, n, c.Len())
	}
	for i := range c.lens {
		c.lens[i] = min(c.lens[i], n)
	}
	return nil
}

// Len implements model.KVCache.
func (c *pcaCache) Len() int { return minLen(c.lens) }

// Cap implements model.KVCache.
func (c *pcaCache) Cap() int { return c.cap }

// ScratchSize implements model.KVCache: a projected query (or sum), a
// partial sum and a chunk of widened coordinates.
func (c *pcaCache) ScratchSize() int {
	return max(pcaQueries*c.rk, 2*c.hd) + wsChunk*max(c.rk, c.rv, c.hd)
}

// Bytes implements model.KVCache: the binary16 coordinates of the whole
// capacity plus the float32 means and directions the cache holds.
func (c *pcaCache) Bytes() int64 {
	n := c.projBytes
	for l := range c.kz {
		n += int64(len(c.kz[l]) + len(c.vz[l]) + len(c.sk[l]) + len(c.sv[l]))
	}
	return n
}

// ReadKV implements model.KVReader: the rows rebuilt from their
// coordinates.
func (c *pcaCache) ReadKV(layer, from, to int, k, v []float32) error {
	if err := checkRead(c.sp.String(), c.kvDim, c.lens, layer, from, to, k, v); err != nil {
		return err
	}
	d := c.kvDim[layer]
	for h := 0; h < d/c.hd; h++ {
		for p := from; p < to; p++ {
			off := (p-from)*d + h*c.hd
			c.rebuild(layer, h, p, k[off:off+c.hd], v[off:off+c.hd])
		}
	}
	return nil
}

// rebuild sets kr and vr to head h's key and value at position p as the
// cache holds them.
func (c *pcaCache) rebuild(layer, h, p int, kr, vr []float32) {
	if p < c.sinks {
		kernel.F16ToF32Row(kr, c.sinkRow(c.sk[layer], h, p))
		kernel.F16ToF32Row(vr, c.sinkRow(c.sv[layer], h, p))
		return
	}
	b := &c.basis[layer][h]
	z := c.tmp[:c.rk]
	b.ck.decode(z, c.kRow(layer, h, p)) // the exact row: the decoder's plain path
	unproject(kr, z, b.mk, b.bk, 1, c.hd)
	z = c.tmp[:c.rv]
	b.cv.decode(z, c.vRow(layer, h, p))
	unproject(vr, z, b.mv, b.bv, 1, c.hd)
}

// dequant returns the first n keys and values of KV head head of layer as
// the cache holds them, for tests.
func (c *pcaCache) dequant(layer, head, n int) (k, v [][]float32) {
	for p := 0; p < n; p++ {
		kr, vr := make([]float32, c.hd), make([]float32, c.hd)
		c.rebuild(layer, head, p, kr, vr)
		k, v = append(k, kr), append(v, vr)
	}
	return k, v
}

// SetOutputMetrics sets every KV head's value metric (SetValueMetric) from
// m's attention output projections: Σ_h W_o,hᵀ·W_o,h over the query heads
// h of the head's group, W_o,h the dim × head_dim block of W_o that head
// h's output multiplies. W_o is read through its MatMul (one product with
// the identity), whatever type it is stored in.
func (f *PCAFit) SetOutputMetrics(m *model.Model) error {
	cfg := &m.Config
	hd := cfg.HeadDim
	for l := 0; l < cfg.NLayers; l++ {
		wo := m.Weights.Layers[l].Wo
		qd, dim := cfg.QDim(l), wo.Rows()
		if wo.Cols() != qd {
			return fmt.Errorf("pca fit: layer %d: output projection of %d columns, queries of %d", l, wo.Cols(), qd)
		}
		eye := make([]float32, qd*qd)
		for i := 0; i < qd; i++ {
			eye[i*qd+i] = 1
		}
		cols := make([]float32, qd*dim) // cols[c*dim+r] = W_o[r][c]
		if err := wo.MatMul(cols, eye, qd); err != nil {
			return fmt.Errorf("pca fit: layer %d: %w", l, err)
		}
		ls := cfg.Layer(l)
		group := ls.NHeads / ls.NKVHeads
		for kvh := 0; kvh < ls.NKVHeads; kvh++ {
			g := make([]float64, hd*hd)
			for h := kvh * group; h < (kvh+1)*group; h++ {
				for i := 0; i < hd; i++ {
					ci := cols[(h*hd+i)*dim : (h*hd+i+1)*dim]
					for j := i; j < hd; j++ {
						cj := cols[(h*hd+j)*dim : (h*hd+j+1)*dim]
						var s float64
						for r, x := range ci {
							s += float64(x) * float64(cj[r])
						}
						g[i*hd+j] += s
					}
				}
			}
			for i := 0; i < hd; i++ {
				for j := i + 1; j < hd; j++ {
					g[j*hd+i] = g[i*hd+j]
				}
			}
			if err := f.SetValueMetric(l, kvh, g); err != nil {
				return err
			}
		}
	}
	return nil
}
