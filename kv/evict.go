package kv

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/terse-llm/terse/model"
)

// Eviction defaults: StreamingLLM's 4 attention sinks and a window of 256
// recent tokens; H2O's budget of half the capacity, half of it the recent
// window (the paper's split between heavy hitters and recent tokens).
const (
	DefaultSinks        = 4
	DefaultSinkWindow   = 256
	DefaultH2OBudget    = 0.5
	DefaultH2ORecentPct = 50
	// SnapKV's observation window and pooling kernel (its code's
	// defaults); EMS's local window.
	DefaultSnapWindow = 32
	DefaultSnapKernel = 5
	// DefaultEMSThreshold is the key cosine similarity at or above which
	// EMS merges an evicted entry instead of dropping it. Chosen on
	// calibration text (pdtext-calib.txt, pdtext-llama-28m, budget 0.5,
	// 20 windows, KLD against the full cache): t0.2 0.00185, t0.35
	// 0.00171, t0.4 0.00157, t0.42 0.00155, t0.45 0.00158, t0.5 0.00165,
	// t0.65 0.00251, t0.95 0.00341.
	DefaultEMSThreshold = 0.4
)

// Evict is the token-eviction part of a spec: which positions attention
// keeps, in front of the cache (Inner) that stores them.
type Evict struct {
	// H2O selects the Heavy-Hitter Oracle; otherwise StreamingLLM's sinks.
	H2O bool
	// Sinks and Window are StreamingLLM's: the first Sinks positions and
	// the latest Window ones are kept.
	Sinks, Window int
	// Budget is H2O's kept positions: a fraction of the capacity up to 1,
	// a count of positions above;
	// RecentPct percent of it is the recent window, the rest the heavy
	// hitters.
	Budget    float64
	RecentPct int
	// Score, when not "", replaces H2O's accumulated attention as the
	// eviction score (the budget and Budget's meaning stay): "snapkv" or
	// "ems". ObsWindow is their window of recent queries (and SnapKV's
	// always-kept window of recent positions), Kernel SnapKV's pooling
	// width.
	Score             string
	ObsWindow, Kernel int
	// EMS's evict-then-merge (Score "ems"): an evicted entry is merged
	// into the kept entry whose key is most similar to its own when the
	// cosine similarity is at least Threshold, and dropped (EMS's zero
	// class) otherwise. EvictOnly turns merging off (every evicted entry
	// dropped: the Global-Local eviction alone); ScoreWeights weighs the
	// two entries of a merge by their Global-Local scores instead of by
	// the positions they stand for.
	Threshold               float64
	EvictOnly, ScoreWeights bool
}

// parseEvict reads "sink[:S][:wW]" or "h2o[:B][:rP]" (rest after the name).
func parseEvict(s, name, rest string) (*Evict, error) {
	e := &Evict{H2O: name != "sink", Sinks: DefaultSinks, Window: DefaultSinkWindow, Budget: DefaultH2OBudget, RecentPct: DefaultH2ORecentPct}
	if name == "snapkv" || name == "ems" {
		e.Score, e.ObsWindow, e.Kernel, e.RecentPct = name, DefaultSnapWindow, DefaultSnapKernel, 0
		if name == "ems" {
			e.Kernel, e.Threshold = 0, DefaultEMSThreshold
		}
	}
	if rest == "" {
		return e, nil
	}
	seen := map[byte]bool{}
	for i, f := range strings.Split(rest, ":") {
		var err error
		if f != "" && i > 0 {
			if seen[f[0]] {
				return nil, fmt.Errorf("kv spec %q: field %q given twice", s, f)
			}
			seen[f[0]] = true
		}
		switch {
		case f == "":
			err = fmt.Errorf("empty field")
		case e.Score != "" && f[0] == 'w':
			e.ObsWindow, err = parseInt(f[1:], 1, 1<<16)
		case e.Score == "ems" && f[0] == 't':
			e.Threshold, err = strconv.ParseFloat(f[1:], 64)
			if err != nil || !(e.Threshold >= -1 && e.Threshold <= 1) {
				err = fmt.Errorf("similarity threshold %q: want a cosine in [-1, 1]", f[1:])
			}
		case e.Score == "ems" && f == "e":
			e.EvictOnly = true
		case e.Score == "ems" && f == "s":
			e.ScoreWeights = true
		case e.Score == "snapkv" && f[0] == 'k':
			e.Kernel, err = parseInt(f[1:], 1, 255)
			if err == nil && e.Kernel%2 == 0 {
				err = fmt.Errorf("pooling kernel %d: want an odd width", e.Kernel)
			}
		case !e.H2O && f[0] == 'w':
			e.Window, err = parseInt(f[1:], 1, 1<<24)
		case !e.H2O && i == 0:
			e.Sinks, err = parseInt(f, 0, 1<<20)
		case e.H2O && e.Score == "" && f[0] == 'r':
			e.RecentPct, err = parseInt(f[1:], 0, 100)
		case e.H2O && i == 0:
			e.Budget, err = strconv.ParseFloat(f, 64)
			if err != nil || !(e.Budget > 0) || e.Budget > 1<<24 || (e.Budget > 1 && e.Budget != float64(int(e.Budget))) {
				err = fmt.Errorf("budget %q: want a fraction in (0, 1] or a whole count of positions", f)
			}
		default:
			err = fmt.Errorf("unknown field")
		}
		if err != nil {
			return nil, fmt.Errorf("kv spec %q: field %q: %w", s, f, err)
		}
	}
	return e, nil
}

func (e *Evict) String() string {
	switch e.Score {
	case "snapkv":
		return fmt.Sprintf("snapkv:%s:w%d:k%d", specNum(e.Budget), e.ObsWindow, e.Kernel)
	case "ems":
		s := fmt.Sprintf("ems:%s:w%d:t%s", specNum(e.Budget), e.ObsWindow, specNum(e.Threshold))
		if e.ScoreWeights {
			s += ":s"
		}
		if e.EvictOnly {
			s += ":e"
		}
		return s
	}
	if e.H2O {
		return fmt.Sprintf("h2o:%s:r%d", specNum(e.Budget), e.RecentPct)
	}
	return fmt.Sprintf("sink:%d:w%d", e.Sinks, e.Window)
}

// kept is the number of positions the eviction keeps of a capacity.
func (e *Evict) kept(capacity int) int {
	if e.H2O {
		b := int(e.Budget)
		if e.Budget <= 1 {
			b = int(e.Budget * float64(capacity))
		}
		return max(1, min(b, capacity))
	}
	return min(capacity, e.Sinks+e.Window)
}

// evictCache keeps every position in its inner cache but lets attention
// see only the positions the eviction keeps: a query's evicted positions
// are masked out of its softmax and get weight exactly 0. It measures
// what eviction costs in quality; it does not yet free the memory of
// evicted positions, so Bytes is the inner cache's (what it really holds)
// and KeptBytes what a compacting cache would hold.
type evictCache struct {
	model.KVCache
	e      Evict
	budget int // positions kept
	recent int // of them, the recent window (H2O)
	heads  [][]h2oHead
	// EMS's evict-then-merge: the keys as appended (per layer, capacity ×
	// KV width, for the similarity of entries only) and how many
	// positions each layer holds; each layer's query heads per KV head.
	merge bool
	hd    int
	kvDim []int
	group []int
	keys  [][]float32
	klen  []int
}

// h2oHead is one query head's H2O state: the accumulated attention of
// every position and which are still kept. Only its head's goroutine
// touches it.
type h2oHead struct {
	acc   []float32
	gone  []bool
	nkept int
	next  int // positions added so far
	// SnapKV and EMS: the attention rows of the last ObsWindow queries
	// (a ring) and their sum per position (local votes).
	ring  [][]float32
	local []float64
	rows  int // queries observed
	// EMS's merged entries (with merging only), and how many evictions
	// merged and dropped.
	m               emsMerge
	merged, dropped int
}

func newEvictCache(inner model.KVCache, cfg *model.Config, e Evict) *evictCache {
	c := &evictCache{KVCache: inner, e: e, budget: e.kept(inner.Cap())}
	if e.H2O {
		c.recent = max(1, c.budget*e.RecentPct/100)
		if e.Score != "" {
			c.recent = max(1, min(e.ObsWindow, c.budget))
		}
		c.merge = e.Score == "ems" && !e.EvictOnly
		c.heads = make([][]h2oHead, cfg.NLayers)
		if c.merge {
			c.hd, c.kvDim, c.group = cfg.HeadDim, make([]int, cfg.NLayers), make([]int, cfg.NLayers)
			c.keys, c.klen = make([][]float32, cfg.NLayers), make([]int, cfg.NLayers)
			for l := range c.keys {
				c.kvDim[l] = cfg.KVDim(l)
				c.group[l] = max(1, cfg.Layer(l).NHeads/max(1, cfg.Layer(l).NKVHeads))
				c.keys[l] = make([]float32, inner.Cap()*c.kvDim[l])
			}
		}
		for l := range c.heads {
			c.heads[l] = make([]h2oHead, cfg.Layer(l).NHeads)
			for h := range c.heads[l] {
				st := h2oHead{acc: make([]float32, inner.Cap()), gone: make([]bool, inner.Cap())}
				if e.Score != "" {
					st.local = make([]float64, inner.Cap())
					st.ring = make([][]float32, e.ObsWindow)
					for i := range st.ring {
						st.ring[i] = make([]float32, inner.Cap())
					}
				}
				if c.merge {
					st.m = newEMSMerge(inner.Cap(), cfg.HeadDim)
				}
				c.heads[l][h] = st
			}
		}
	}
	return c
}

// Mask implements model.AttentionMasker.
func (c *evictCache) Mask(layer, qhead, pos int, row []float32) {
	if !c.e.H2O {
		lo, hi := c.e.Sinks, pos-c.e.Window // evict sinks ≤ p ≤ hi
		if hi < lo {
			return
		}
		lower(row, func(p int) bool { return p >= lo && p <= hi })
		if m, ok := c.KVCache.(model.AttentionMasker); ok {
			m.Mask(layer, qhead, pos, row)
		}
		return
	}
	st := &c.heads[layer][qhead]
	for st.next <= pos { // add the new positions, evicting past the budget
		p := st.next
		st.next++
		st.acc[p], st.gone[p] = 0, false
		st.nkept++
		if c.merge {
			d, kvh := c.kvDim[layer], qhead/c.group[layer]
			st.m.add(p, c.keys[layer][p*d+kvh*c.hd:p*d+(kvh+1)*c.hd])
		}
		if st.nkept > c.budget {
			victim, best := -1, 0.0
			for q := 0; q <= p-c.recent; q++ {
				if !st.gone[q] {
					if x := c.score(st, q, p); victim < 0 || x < best {
						victim, best = q, x
					}
				}
			}
			if victim >= 0 {
				if c.merge {
					c.emsEvict(st, victim, p)
				} else {
					st.gone[victim] = true
				}
				st.nkept--
			}
		}
	}
	if c.merge {
		c.emsScores(st, pos, row)
	}
	lower(row, func(p int) bool { return st.gone[p] })
	if m, ok := c.KVCache.(model.AttentionMasker); ok {
		m.Mask(layer, qhead, pos, row)
	}
}

// score is position q's eviction score for a head whose newest position
// is p: H2O's accumulated attention; SnapKV's votes of the last ObsWindow
// queries, average-pooled over Kernel neighbouring positions; EMS's
// global-local score, the accumulated attention divided by the number of
// queries that saw the position (the causal mask's bias removed, as in
// EMS's global score) plus the mean attention of the last ObsWindow
// queries (its local score).
func (c *evictCache) score(st *h2oHead, q, p int) float64 {
	switch c.e.Score {
	case "snapkv":
		h := c.e.Kernel / 2
		lo, hi := max(0, q-h), min(p-1, q+h)
		var s float64
		for i := lo; i <= hi; i++ {
			s += st.local[i]
		}
		return s / float64(c.e.Kernel)
	case "ems":
		n := max(1, st.rows-q)
		w := max(1, min(st.rows, c.e.ObsWindow))
		return float64(st.acc[q])/float64(n) + st.local[q]/float64(w)
	}
	return float64(st.acc[q])
}

// lower sets the scores of the positions out says are evicted 1e4 below the
// row's largest kept score.
func lower(row []float32, out func(int) bool) {
	mx := row[len(row)-1]
	for p, x := range row {
		if !out(p) {
			mx = max(mx, x)
		}
	}
	for p := range row {
		if out(p) {
			row[p] = mx - 1e4
		}
	}
}

// Observe implements model.AttentionMasker: evicted weights become 0, and
// H2O adds each kept position's weight to its accumulated attention.
func (c *evictCache) Observe(layer, qhead, pos int, row []float32, inv float32) {
	if !c.e.H2O {
		if hi := pos - c.e.Window; hi >= c.e.Sinks {
			clear(row[c.e.Sinks : hi+1])
		}
		if m, ok := c.KVCache.(model.AttentionMasker); ok {
			m.Observe(layer, qhead, pos, row, inv)
		}
		return
	}
	st := &c.heads[layer][qhead]
	for p, w := range row {
		if st.gone[p] {
			row[p] = 0
		} else {
			st.acc[p] += w * inv
		}
	}
	if st.ring != nil {
		// The row leaving the window goes out of the local votes.
		old := st.ring[st.rows%len(st.ring)]
		if st.rows >= len(st.ring) {
			for p, w := range old {
				st.local[p] -= float64(w)
			}
		}
		clear(old)
		for p, w := range row {
			old[p] = w * inv
			st.local[p] += float64(old[p])
		}
		st.rows = pos + 1
	}
	if c.merge {
		c.emsSpread(st, pos, row)
	}
	if m, ok := c.KVCache.(model.AttentionMasker); ok {
		m.Observe(layer, qhead, pos, row, inv)
	}
}

// Append implements model.KVCache; EMS's merging keeps a copy of the keys
// as appended, to measure the similarity of entries.
func (c *evictCache) Append(layer int, k, v []float32) error {
	if err := c.KVCache.Append(layer, k, v); err != nil {
		return err
	}
	if c.merge {
		d, n := c.kvDim[layer], c.klen[layer]
		if len(k) != d || n >= c.Cap() {
			return fmt.Errorf("kv %s: layer %d: key copy of position %d (width %d, capacity %d)", c.e.String(), layer, n, len(k), c.Cap())
		}
		copy(c.keys[layer][n*d:(n+1)*d], k)
		c.klen[layer]++
	}
	return nil
}

// Truncate implements model.KVCache; H2O forgets the positions at or past
// n (those evicted before n stay evicted).
func (c *evictCache) Truncate(n int) error {
	if err := c.KVCache.Truncate(n); err != nil {
		return err
	}
	for l := range c.klen {
		c.klen[l] = min(c.klen[l], n)
	}
	for l := range c.heads {
		for h := range c.heads[l] {
			st := &c.heads[l][h]
			if c.merge && st.next > n {
				c.emsTruncate(st, l, h/c.group[l], n)
			}
			if st.ring != nil && st.rows > n {
				// The local votes of queries past n go.
				for _, r := range st.ring {
					clear(r)
				}
				clear(st.local)
				st.rows = 0
			}
			if st.next > n {
				st.next, st.nkept = n, 0
				for p := 0; p < n; p++ {
					if !st.gone[p] {
						st.nkept++
					}
				}
			}
		}
	}
	return nil
}

// Bytes implements model.KVCache: every position is still stored, so it
// is the inner cache's memory, plus, with EMS's merging, the float32 copy
// of the keys that entries' similarities are measured on.
func (c *evictCache) Bytes() int64 { return c.KVCache.Bytes() + c.keyCopyBytes() }

// KeptBytes is the inner cache's memory (and key copy) for the kept
// positions only: what a cache that compacts evicted positions away would
// hold.
func (c *evictCache) KeptBytes() int64 {
	return c.Bytes() * int64(c.budget) / int64(c.Cap())
}

// keyCopyBytes is the memory of the keys copied for EMS's merging (0
// without merging).
func (c *evictCache) keyCopyBytes() int64 {
	var n int64
	for _, k := range c.keys {
		n += 4 * int64(len(k))
	}
	return n
}
