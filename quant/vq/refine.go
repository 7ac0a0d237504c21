package vq

import (
	"math"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/tensor"
)

func parallelism() int { return kernel.Threads() }

// maxFullUnknowns bounds K·Dim for the codebook update with cross terms
// (its normal matrix has (K·Dim)² entries per worker).
const maxFullUnknowns = 1024

// updateCodebook re-solves one codebook (stage st, row group rg, segment
// seg) by least squares under the full H with every code and every other
// codebook fixed, then moves the reconstruction accordingly.
func (f *fitter) updateCodebook(h []float64, st, rg, seg int) {
	m, d, k, cols := f.m, f.m.Dim, f.m.K(), f.m.Cols
	r0, r1, p0, p1 := f.unit(rg, seg)
	n := k * d
	full := n <= maxFullUnknowns
	c0, c1 := p0*d, p1*d // the segment's columns
	per := m.Subs() * m.Stages
	off := m.book(st, rg, seg)
	old := make([]float64, n)
	for i := range old {
		old[i] = float64(f.cb[off+i])
	}
	workers := min(parallelism(), 4, r1-r0)
	type acc struct{ a, b []float64 }
	accs := make([]acc, workers)
	parallel(r1-r0, workers, func(w, lo, hi int) {
		asz := k * d * d // block-diagonal
		if full {
			asz = n * n
		}
		a, b := make([]float64, asz), make([]float64, n)
		e := make([]float64, cols)
		he := make([]float64, c1-c0)
		for r := r0 + lo; r < r0+hi; r++ {
			// e: the residual with this codebook's share put back.
			for j := 0; j < cols; j++ {
				e[j] = float64(f.u[r*cols+j]) - float64(f.uh[r*cols+j])
			}
			for p := p0; p < p1; p++ {
				c := int(f.codes[r*per+p*m.Stages+st])
				for t := 0; t < d; t++ {
					e[p*d+t] += old[c*d+t]
				}
			}
			for i := c0; i < c1; i++ {
				he[i-c0] = dot(h[i*cols:(i+1)*cols], e)
			}
			s2 := f.s2[r]
			for p := p0; p < p1; p++ {
				cp := int(f.codes[r*per+p*m.Stages+st])
				for t := 0; t < d; t++ {
					b[cp*d+t] += s2 * he[p*d+t-c0]
				}
				if !full {
					blk := a[cp*d*d:]
					for t := 0; t < d; t++ {
						hr := h[(p*d+t)*cols+p*d:]
						for u := 0; u < d; u++ {
							blk[t*d+u] += s2 * hr[u]
						}
					}
					continue
				}
				for q := p0; q < p1; q++ {
					cq := int(f.codes[r*per+q*m.Stages+st])
					for t := 0; t < d; t++ {
						hr := h[(p*d+t)*cols+q*d:]
						ar := a[(cp*d+t)*n+cq*d:]
						for u := 0; u < d; u++ {
							ar[u] += s2 * hr[u]
						}
					}
				}
			}
		}
		accs[w] = acc{a, b}
	})
	a, b := accs[0].a, accs[0].b
	for _, x := range accs[1:] {
		if x.a == nil {
			continue
		}
		for i := range a {
			a[i] += x.a[i]
		}
		for i := range b {
			b[i] += x.b[i]
		}
	}
	// Ridge toward the old entries: unused entries keep their values and
	// the system stays positive definite.
	var tr float64
	if full {
		for i := 0; i < n; i++ {
			tr += a[i*n+i]
		}
	} else {
		for c := 0; c < k; c++ {
			for t := 0; t < d; t++ {
				tr += a[c*d*d+t*d+t]
			}
		}
	}
	lambda := 1e-6*tr/float64(n) + 1e-12
	var sol []float64
	if full {
		for i := 0; i < n; i++ {
			a[i*n+i] += lambda
			b[i] += lambda * old[i]
		}
		sol = solveSPD(a, b, n)
	} else {
		sol = make([]float64, n)
		for c := 0; c < k; c++ {
			blk := a[c*d*d : (c+1)*d*d]
			rhs := b[c*d : (c+1)*d]
			for t := 0; t < d; t++ {
				blk[t*d+t] += lambda
				rhs[t] += lambda * old[c*d+t]
			}
			x := solveSPD(blk, rhs, d)
			if x == nil {
				x = old[c*d : (c+1)*d]
			}
			copy(sol[c*d:], x)
		}
	}
	if sol == nil {
		return
	}
	// Exact line search along the step: the block-diagonal solution is
	// only an approximation, and even the full one should not be trusted
	// blindly in float64. loss(α) = L − 2αB + α²C.
	step := make([]float64, n)
	for i := range step {
		step[i] = sol[i] - old[i]
	}
	bs, cs := make([]float64, workers), make([]float64, workers)
	parallel(r1-r0, workers, func(w, lo, hi int) {
		e := make([]float64, cols)
		v := make([]float64, c1-c0)
		for r := r0 + lo; r < r0+hi; r++ {
			for j := 0; j < cols; j++ {
				e[j] = float64(f.u[r*cols+j]) - float64(f.uh[r*cols+j])
			}
			for p := p0; p < p1; p++ {
				c := int(f.codes[r*per+p*m.Stages+st])
				copy(v[p*d-c0:p*d-c0+d], step[c*d:c*d+d])
			}
			var b, c float64
			for i := c0; i < c1; i++ {
				if v[i-c0] == 0 {
					continue
				}
				b += v[i-c0] * dot(h[i*cols:(i+1)*cols], e)
				c += v[i-c0] * dot(h[i*cols+c0:i*cols+c1], v)
			}
			bs[w] += f.s2[r] * b
			cs[w] += f.s2[r] * c
		}
	})
	var bsum, csum float64
	for i := range bs {
		bsum, csum = bsum+bs[i], csum+cs[i]
	}
	if !(bsum > 0 && csum > 0) {
		return
	}
	alpha := bsum / csum
	for i := range sol {
		sol[i] = old[i] + alpha*step[i]
		if v := sol[i]; math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 65504 {
			return
		}
	}
	delta := make([]float32, n)
	for i, v := range sol {
		hv := tensor.F32ToF16(float32(v))
		m.Codebooks[off+i] = hv
		nv := tensor.F16ToF32(hv)
		delta[i] = nv - f.cb[off+i]
		f.cb[off+i] = nv
	}
	for r := r0; r < r1; r++ {
		for p := p0; p < p1; p++ {
			c := int(f.codes[r*per+p*m.Stages+st])
			for t := 0; t < d; t++ {
				f.uh[r*cols+p*d+t] += delta[c*d+t]
			}
		}
	}
}

// updateCodes revisits every code of every row, sub-vector by sub-vector
// and stage by stage, taking the entry that lowers the row's
// (u−û)H(u−û)ᵀ the most given the other codes.
func (f *fitter) updateCodes(h []float64) {
	m, d, k, cols := f.m, f.m.Dim, f.m.K(), f.m.Cols
	per := m.Subs() * m.Stages
	segLen := m.SegLen()
	parallel(m.Rows, 0, func(_, lo, hi int) {
		e := make([]float64, cols)
		g := make([]float64, cols)
		delta := make([]float64, d)
		best := make([]float64, d)
		hpp := make([]float64, d*d)
		for r := lo; r < hi; r++ {
			rg := r / m.RowGroup
			for j := 0; j < cols; j++ {
				e[j] = float64(f.u[r*cols+j]) - float64(f.uh[r*cols+j])
			}
			for i := 0; i < cols; i++ {
				g[i] = dot(h[i*cols:(i+1)*cols], e)
			}
			for p := 0; p < m.Subs(); p++ {
				for t := 0; t < d; t++ {
					copy(hpp[t*d:(t+1)*d], h[(p*d+t)*cols+p*d:])
				}
				gp := g[p*d : p*d+d]
				for st := 0; st < m.Stages; st++ {
					book := f.cb[m.book(st, rg, p/segLen):]
					c0 := int(f.codes[r*per+p*m.Stages+st])
					cur := book[c0*d : c0*d+d]
					bc, bv := c0, 0.0
					for c := 0; c < k; c++ {
						if c == c0 {
							continue
						}
						ent := book[c*d : c*d+d]
						var lin, quad float64
						for t := 0; t < d; t++ {
							delta[t] = float64(ent[t]) - float64(cur[t])
							lin += delta[t] * gp[t]
						}
						for t := 0; t < d; t++ {
							row := hpp[t*d : t*d+d]
							var s float64
							for u := 0; u < d; u++ {
								s += row[u] * delta[u]
							}
							quad += delta[t] * s
						}
						if v := quad - 2*lin; v < bv-1e-12*math.Abs(bv) {
							bc, bv = c, v
							copy(best, delta)
						}
					}
					if bc == c0 {
						continue
					}
					f.codes[r*per+p*m.Stages+st] = uint16(bc)
					for t := 0; t < d; t++ {
						f.uh[r*cols+p*d+t] += float32(best[t])
						e[p*d+t] -= best[t]
						hr := h[(p*d+t)*cols : (p*d+t+1)*cols]
						for j := range g {
							g[j] -= hr[j] * best[t]
						}
					}
				}
			}
		}
	})
}

// solveSPD solves a x = b for the symmetric positive-definite n×n a
// (row-major; destroyed) by Cholesky, or returns nil when a is not
// positive definite.
func solveSPD(a, b []float64, n int) []float64 {
	for i := 0; i < n; i++ {
		ri := a[i*n : i*n+n]
		for j := 0; j < i; j++ {
			rj := a[j*n : j*n+n]
			ri[j] = (ri[j] - dot(ri[:j], rj[:j])) / rj[j]
		}
		s := ri[i] - dot(ri[:i], ri[:i])
		if !(s > 0) || math.IsInf(s, 0) {
			return nil
		}
		ri[i] = math.Sqrt(s)
	}
	x := make([]float64, n)
	for i := 0; i < n; i++ { // L y = b
		x[i] = (b[i] - dot(a[i*n:i*n+i], x[:i])) / a[i*n+i]
	}
	for i := n - 1; i >= 0; i-- { // Lᵀ x = y
		s := x[i]
		for j := i + 1; j < n; j++ {
			s -= a[j*n+i] * x[j]
		}
		x[i] = s / a[i*n+i]
	}
	return x
}
