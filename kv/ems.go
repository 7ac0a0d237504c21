package kv

import (
	"math"
)

// emsMerge is one query head's EMS evict-then-merge state. Every position
// added so far belongs to one entry, named by its slot (the position whose
// score and weight stand for the entry), or to none (evicted for good,
// EMS's zero class). An entry's key and value are the alpha-weighted means
// of its positions' stored keys and values: q·k̄ = Σ α_p (q·k_p), so its
// score comes from the stored positions' scores, and Σ α_p v_p from the
// inner cache's weighted sum, whatever CACHE is.
type emsMerge struct {
	owner []int32   // position p's entry slot, or -1
	alpha []float64 // position p's weight in its entry (they sum to 1)
	count []int32   // positions entry (slot) p stands for
	kbar  []float64 // entry (slot) p's mean key as appended, head_dim each
	sum   []float64 // scratch: merged scores per slot
}

func newEMSMerge(capacity, hd int) emsMerge {
	return emsMerge{owner: make([]int32, capacity), alpha: make([]float64, capacity), count: make([]int32, capacity),
		kbar: make([]float64, capacity*hd), sum: make([]float64, capacity)}
}

// emsAdd makes position p its own entry, its key k (head_dim floats).
func (m *emsMerge) add(p int, k []float32) {
	m.owner[p], m.alpha[p], m.count[p] = int32(p), 1, 1
	kb := m.kbar[p*len(k) : (p+1)*len(k)]
	for i, x := range k {
		kb[i] = float64(x)
	}
}

// cosine is the cosine similarity of a and b; 0 when either is zero.
func cosine(a, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// emsEvict removes entry v from a head whose newest position is p: it is
// merged into the kept entry whose mean key is the most similar to v's
// (cosine; the earliest slot on a tie) when that similarity reaches the
// threshold, and dropped otherwise. The merged entry's mean key and value
// weigh the two entries by the positions they stand for, or by their
// Global-Local scores with ScoreWeights (equal weights when both are 0);
// it takes over v's accumulated attention and local votes.
func (c *evictCache) emsEvict(st *h2oHead, v, p int) {
	m := &st.m
	hd := c.hd
	kv := m.kbar[v*hd : (v+1)*hd]
	best, to := 0.0, -1
	for q := 0; q <= p; q++ {
		if q == v || st.gone[q] {
			continue
		}
		if s := cosine(kv, m.kbar[q*hd:(q+1)*hd]); to < 0 || s > best {
			best, to = s, q
		}
	}
	st.gone[v] = true
	if to < 0 || best < c.e.Threshold {
		st.dropped++
		for q := 0; q <= p; q++ {
			if int(m.owner[q]) == v {
				m.owner[q] = -1
			}
		}
		return
	}
	wt, wv := float64(m.count[to]), float64(m.count[v])
	if c.e.ScoreWeights {
		wt, wv = c.score(st, to, p), c.score(st, v, p)
		if !(wt+wv > 0) {
			wt, wv = 1, 1
		}
	}
	st.merged++
	ft, fv := wt/(wt+wv), wv/(wt+wv)
	for q := 0; q <= p; q++ {
		switch int(m.owner[q]) {
		case to:
			m.alpha[q] *= ft
		case v:
			m.owner[q] = int32(to)
			m.alpha[q] *= fv
		}
	}
	kt := m.kbar[to*hd : (to+1)*hd]
	for i := range kt {
		kt[i] = ft*kt[i] + fv*kv[i]
	}
	m.count[to] += m.count[v]
	st.acc[to] += st.acc[v]
	var local float64
	for _, r := range st.ring {
		r[to] += r[v]
		local += float64(r[to])
	}
	st.local[to] = local
}

// emsScores sets the score of every merged entry of a head's query at pos
// in row: Σ α_p·row[p] over its positions plus ln(count), so that in the
// softmax it weighs as count positions of its mean key would.
func (c *evictCache) emsScores(st *h2oHead, pos int, row []float32) {
	m := &st.m
	for q := 0; q <= pos; q++ {
		if o := m.owner[q]; o >= 0 && m.count[o] > 1 {
			m.sum[o] += m.alpha[q] * float64(row[q])
		}
	}
	for q := 0; q <= pos; q++ {
		if !st.gone[q] && m.count[q] > 1 {
			row[q] = float32(m.sum[q] + math.Log(float64(m.count[q])))
			m.sum[q] = 0
		}
	}
}

// emsSpread hands each merged entry's weight in row to its positions,
// α_p each, so that the inner cache's weighted sum is the entries' mean
// values weighted by the softmax.
func (c *evictCache) emsSpread(st *h2oHead, pos int, row []float32) {
	m := &st.m
	for q := 0; q <= pos; q++ {
		if o := int(m.owner[q]); o >= 0 && o != q && m.count[o] > 1 {
			row[q] = float32(float64(row[o]) * m.alpha[q])
		}
	}
	for q := 0; q <= pos; q++ {
		if int(m.owner[q]) == q && m.count[q] > 1 {
			row[q] = float32(float64(row[q]) * m.alpha[q])
		}
	}
}

// emsTruncate forgets positions at or past n of a head's entries: an entry
// whose slot is at or past n goes, its earlier positions evicted for good;
// an earlier entry loses its later positions, its weights renormalized
// over the rest and its mean key recomputed from the appended keys.
func (c *evictCache) emsTruncate(st *h2oHead, layer, kvh, n int) {
	m := &st.m
	hd, d := c.hd, c.kvDim[layer]
	lim := min(st.next, len(m.owner))
	for q := 0; q < min(n, lim); q++ {
		if o := int(m.owner[q]); o >= n {
			m.owner[q], st.gone[q] = -1, true
		}
	}
	for q := n; q < lim; q++ {
		if o := int(m.owner[q]); o >= 0 && o < n {
			m.count[o] = -1 // marked for rebuilding
		}
	}
	for s := 0; s < min(n, lim); s++ {
		if m.count[s] != -1 {
			continue
		}
		var tot float64
		cnt := int32(0)
		for q := 0; q < n; q++ {
			if int(m.owner[q]) == s {
				tot += m.alpha[q]
				cnt++
			}
		}
		m.count[s] = cnt
		kb := m.kbar[s*hd : (s+1)*hd]
		clear(kb)
		for q := 0; q < n; q++ {
			if int(m.owner[q]) == s {
				if tot > 0 {
					m.alpha[q] /= tot
				} else {
					m.alpha[q] = 1 / float64(cnt)
				}
				k := c.keys[layer][q*d+kvh*hd : q*d+(kvh+1)*hd]
				for i, x := range k {
					kb[i] += m.alpha[q] * float64(x)
				}
			}
		}
	}
}
