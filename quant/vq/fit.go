package vq

import (
	"fmt"
	"math"

	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/kmeans"
	"github.com/terse-llm/terse/tensor"
)

// fitter is the state of one Fit: normalised rows, the current
// reconstruction, the codes and the widened codebooks.
type fitter struct {
	m     *Matrix
	cfg   Config
	u     []float32 // normalised rows w/s
	uh    []float32 // current reconstruction of u
	s2    []float64 // s_r²
	h     []float32 // per-column weight (mean 1)
	codes []uint16  // Rows × Subs × Stages
	cb    []float32 // as m.Codebooks, widened
}

// Fit quantizes the rows×cols matrix w (row-major, not modified) under cfg.
// stats may be nil; refinement needs stats.Hessian.
func Fit(w []float32, rows, cols int, stats *quant.Stats, cfg Config) (*Matrix, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if rows <= 0 || cols <= 0 || len(w) != rows*cols {
		return nil, fmt.Errorf("vq: %d values for a %d×%d matrix", len(w), rows, cols)
	}
	if cols%cfg.Dim != 0 {
		return nil, fmt.Errorf("vq: %d columns are not a multiple of dimension %d", cols, cfg.Dim)
	}
	if err := stats.Check(cols); err != nil {
		return nil, fmt.Errorf("vq: %w", err)
	}
	rg := cfg.RowGroup
	if rg <= 0 || rg > rows {
		rg = rows
	}
	m := &Matrix{Rows: rows, Cols: cols, Dim: cfg.Dim, CodeBits: cfg.CodeBits, Stages: cfg.Stages,
		Segments: cfg.Segments, RowGroup: rg}
	if m.Segments > m.Subs() || (m.Subs()+m.SegLen()-1)/m.SegLen() != m.Segments {
		return nil, fmt.Errorf("vq: %d segments do not split %d sub-vectors evenly", m.Segments, m.Subs())
	}
	f := &fitter{m: m, cfg: cfg, u: make([]float32, rows*cols), uh: make([]float32, rows*cols),
		s2: make([]float64, rows), h: make([]float32, cols),
		codes: make([]uint16, rows*m.Subs()*m.Stages)}
	m.Scales = make([]uint16, rows)
	m.Codebooks = make([]uint16, m.book(m.Stages, 0, 0))
	f.cb = make([]float32, len(m.Codebooks))

	// Column weights: importance, else diag H, else 1; mean 1, floored.
	for j := range f.h {
		f.h[j] = 1
	}
	if stats != nil && (stats.Importance != nil || stats.Hessian != nil) {
		var mean float64
		for j := range f.h {
			v := float64(0)
			if stats.Importance != nil {
				v = float64(stats.Importance[j])
			} else {
				v = stats.Hessian[j*cols+j]
			}
			if !(v > 0) || math.IsInf(v, 0) {
				v = 0
			}
			f.h[j] = float32(v)
			mean += v
		}
		mean /= float64(cols)
		for j := range f.h {
			if mean > 0 {
				f.h[j] = float32(max(float64(f.h[j])/mean, 1e-6))
			} else {
				f.h[j] = 1
			}
		}
	}
	// Row scales: the RMS, in fp16.
	for r := 0; r < rows; r++ {
		row := w[r*cols : (r+1)*cols]
		s := float32(1)
		if !cfg.NoScale {
			var ss float64
			for _, v := range row {
				ss += float64(v) * float64(v)
			}
			s = tensor.F16ToF32(tensor.F32ToF16(float32(math.Sqrt(ss / float64(cols)))))
			if !(s > 0) || !finite(s) {
				s = 1
			}
		}
		m.Scales[r] = tensor.F32ToF16(s)
		f.s2[r] = float64(s) * float64(s)
		for j, v := range row {
			f.u[r*cols+j] = v / s
		}
	}
	for st := 0; st < m.Stages; st++ {
		for g := 0; g < m.RowGroups(); g++ {
			for seg := 0; seg < m.Segments; seg++ {
				f.initUnit(st, g, seg)
			}
		}
	}
	if cfg.Refine > 0 && stats != nil && stats.Hessian != nil {
		h := damped(stats.Hessian, cols, cfg.Damp)
		for round := 0; round < cfg.Refine; round++ {
			for st := 0; st < m.Stages; st++ {
				for g := 0; g < m.RowGroups(); g++ {
					for seg := 0; seg < m.Segments; seg++ {
						f.updateCodebook(h, st, g, seg)
					}
				}
			}
			f.updateCodes(h)
		}
	}
	m.Codes = make([]byte, rows*m.RowBytes())
	per := m.Subs() * m.Stages
	for r := 0; r < rows; r++ {
		kmeans.PackCodes(m.Codes[r*m.RowBytes():(r+1)*m.RowBytes()], f.codes[r*per:(r+1)*per], m.CodeBits)
	}
	return m, m.Check()
}

func damped(h []float64, n int, damp float64) []float64 {
	out := make([]float64, len(h))
	copy(out, h)
	var mean float64
	for j := 0; j < n; j++ {
		mean += h[j*n+j]
	}
	mean /= float64(n)
	if !(mean > 0) {
		mean = 1
	}
	for j := 0; j < n; j++ {
		out[j*n+j] += damp * mean
	}
	return out
}

// unit lists the sub-vector positions of one codebook: rows [r0, r1),
// sub-vectors [p0, p1).
func (f *fitter) unit(rg, seg int) (r0, r1, p0, p1 int) {
	m := f.m
	r0, r1 = rg*m.RowGroup, min((rg+1)*m.RowGroup, m.Rows)
	p0, p1 = seg*m.SegLen(), min((seg+1)*m.SegLen(), m.Subs())
	return
}

// initUnit fits one codebook by weighted k-means on the current residual
// and adds its share to the reconstruction.
func (f *fitter) initUnit(st, rg, seg int) {
	m, d := f.m, f.m.Dim
	r0, r1, p0, p1 := f.unit(rg, seg)
	np := p1 - p0
	n := (r1 - r0) * np
	x := make([]float32, n*d)
	wt := make([]float32, n*d)
	for r := r0; r < r1; r++ {
		for p := p0; p < p1; p++ {
			i := ((r-r0)*np + p - p0) * d
			for t := 0; t < d; t++ {
				j := r*m.Cols + p*d + t
				x[i+t] = f.u[j] - f.uh[j]
				wt[i+t] = float32(f.s2[r]) * f.h[p*d+t]
			}
		}
	}
	seed := f.cfg.Seed ^ uint64(((st*m.RowGroups()+rg)*m.Segments+seg)+1)*0x9e3779b97f4a7c15
	book, codes := weightedKMeans(x, wt, d, m.K(), f.cfg.Iters, seed)
	off := m.book(st, rg, seg)
	for i, v := range book {
		m.Codebooks[off+i] = tensor.F32ToF16(v)
		f.cb[off+i] = v
	}
	per := m.Subs() * m.Stages
	for r := r0; r < r1; r++ {
		for p := p0; p < p1; p++ {
			c := codes[(r-r0)*np+p-p0]
			f.codes[r*per+p*m.Stages+st] = c
			for t := 0; t < d; t++ {
				f.uh[r*m.Cols+p*d+t] += book[int(c)*d+t]
			}
		}
	}
}

// weightedKMeans clusters the n = len(x)/d points x (weights wt per
// coordinate) into k entries: k-means++ seeding, iters Lloyd iterations,
// empty cells re-seeded at the worst-served points, the codebook rounded
// to fp16 before the final assignment. It returns the codebook (k×d) and
// the codes.
func weightedKMeans(x, wt []float32, d, k, iters int, seed uint64) ([]float32, []uint16) {
	n := len(x) / d
	book := make([]float32, k*d)
	codes := make([]uint16, n)
	if n == 0 {
		return book, codes
	}
	rng := newRand(seed)
	// k-means++ (Arthur & Vassilvitskii 2007) under the weighted distance.
	dist := make([]float64, n)
	copy(book[:d], x[rng.IntN(n)*d:])
	for i := range dist {
		dist[i] = wdist(x[i*d:i*d+d], wt[i*d:i*d+d], book[:d])
	}
	for c := 1; c < k; c++ {
		var total float64
		for _, v := range dist {
			total += v
		}
		pick := 0
		if total > 0 {
			t := rng.Float64() * total
			for pick = 0; pick < n-1; pick++ {
				t -= dist[pick]
				if t < 0 {
					break
				}
			}
		} else {
			pick = rng.IntN(n)
		}
		e := book[c*d : c*d+d]
		copy(e, x[pick*d:pick*d+d])
		parallel(n, 0, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				dist[i] = min(dist[i], wdist(x[i*d:i*d+d], wt[i*d:i*d+d], e))
			}
		})
	}
	assign := func() bool {
		changed := make([]bool, runtimeProcs())
		parallel(n, 0, func(w, lo, hi int) {
			for i := lo; i < hi; i++ {
				c, e := nearest(x[i*d:i*d+d], wt[i*d:i*d+d], book, d)
				dist[i] = e
				if uint16(c) != codes[i] {
					codes[i] = uint16(c)
					changed[w] = true
				}
			}
		})
		for _, c := range changed {
			if c {
				return true
			}
		}
		return false
	}
	assign()
	num := make([]float64, k*d)
	den := make([]float64, k*d)
	for it := 0; it < iters; it++ {
		clear(num)
		clear(den)
		count := make([]int, k)
		for i := 0; i < n; i++ {
			c := int(codes[i])
			count[c]++
			for t := 0; t < d; t++ {
				w := float64(wt[i*d+t])
				num[c*d+t] += w * float64(x[i*d+t])
				den[c*d+t] += w
			}
		}
		for c := 0; c < k; c++ {
			for t := 0; t < d; t++ {
				if den[c*d+t] > 0 {
					book[c*d+t] = float32(num[c*d+t] / den[c*d+t])
				}
			}
		}
		// Empty cells take the worst-served points, worst first.
		for c := 0; c < k; c++ {
			if count[c] > 0 {
				continue
			}
			bi, be := -1, 0.0
			for i, e := range dist {
				if e > be {
					bi, be = i, e
				}
			}
			if bi < 0 {
				break
			}
			copy(book[c*d:c*d+d], x[bi*d:bi*d+d])
			dist[bi] = 0
		}
		if !assign() && it > 0 {
			break
		}
	}
	for i, v := range book {
		book[i] = tensor.F16ToF32(tensor.F32ToF16(v))
	}
	assign()
	return book, codes
}

func runtimeProcs() int { return max(1, parallelism()) }

func wdist(x, w, c []float32) float64 {
	var s float64
	for t := range x {
		v := float64(x[t] - c[t])
		s += float64(w[t]) * v * v
	}
	return s
}

// nearest is the entry of book (k×d) closest to x under weights w, and its
// distance (the lowest index on ties).
func nearest(x, w, book []float32, d int) (int, float64) {
	best, be := 0, math.Inf(1)
	for c := 0; c*d < len(book); c++ {
		e := book[c*d : c*d+d]
		var s float32
		for t := range x {
			v := x[t] - e[t]
			s += w[t] * v * v
		}
		if float64(s) < be {
			best, be = c, float64(s)
		}
	}
	return best, be
}
