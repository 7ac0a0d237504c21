package kv

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/terse-llm/terse/model"
)

// ZipCache and staircase defaults.
const (
	DefaultZipHi    = 4
	DefaultZipLo    = 2
	DefaultZipFrac  = 0.4
	DefaultTQGroup  = 32
	DefaultTQSinks  = 0
	DefaultStairWin = 128
)

// DefaultStairBits are the staircase's default bits, newest band first.
var DefaultStairBits = []int{4, 2}

// zipCache is ZipCache (He et al. 2024, "ZipCache: Accurate and Efficient
// KV Cache Quantization with Salient Token Identification"): each token's
// keys and values are quantized token-wise, at hi bits when the token is
// salient and lo bits otherwise. Saliency is ZipCache's normalized
// attention score, the attention a token has received summed over the
// queries that could see it and divided by their number (which removes the
// causal mask's bias towards early tokens); the salient tokens are the
// fraction f with the highest score. The cache sees attention only after
// it has stored a layer's keys, so a token's saliency at layer l is taken
// from layer l−1's attention of the same forward pass (the probe queries
// are all the queries of the pass, for layer l−1 — ZipCache's probe tokens
// approximate exactly that matrix), and at layer 0 from layer 0's
// attention in earlier passes; a token with no score yet is not salient.
// ZipCache's channel-separable divisors (per-channel √max|K|, which need
// the whole prompt before the first token is stored) are replaced by the
// rotation (rotation) when it is on: both flatten key channel outliers
// before token-wise quantization. The first S positions are kept whole in
// binary16 (attention sinks).
type zipCache struct {
	*tqCache
	frac       float64
	sink, hi   int // levels
	lo         int
	acc        [][][]float32 // per layer, per query head: accumulated weight
	seen       [][]int       // per layer, per query head: queries observed
	thrAt      []int         // per layer: Σ seen when thr was computed (−1: never)
	thr        []float64
	scores     []float64
	haveScores bool
}

func newZipCache(cfg *model.Config, positions int, sp *Spec) (*zipCache, error) {
	s := min(sp.TQSinks, positions)
	nhi := int(math.Round(sp.ZipFrac * float64(positions-s)))
	levels := []tqLevel{
		{k: rowFmt{16, 0}, v: rowFmt{16, 0}, slots: s},
		{k: rowFmt{sp.ZipHi, sp.Group}, v: rowFmt{sp.ZipHi, sp.Group}, slots: nhi},
		{k: rowFmt{sp.ZipLo, sp.Group}, v: rowFmt{sp.ZipLo, sp.Group}, slots: positions - s - nhi},
	}
	tq, err := newTQCache(sp.String(), cfg, positions, levels, sp.Rotate)
	if err != nil {
		return nil, err
	}
	z := &zipCache{tqCache: tq, frac: sp.ZipFrac, sink: 0, hi: 1, lo: 2,
		acc: make([][][]float32, cfg.NLayers), seen: make([][]int, cfg.NLayers),
		thrAt: make([]int, cfg.NLayers), thr: make([]float64, cfg.NLayers)}
	for l := range z.acc {
		nh := cfg.Layer(l).NHeads
		z.acc[l], z.seen[l] = make([][]float32, nh), make([]int, nh)
		for h := range z.acc[l] {
			z.acc[l][h] = make([]float32, positions)
		}
		z.thrAt[l] = -1
	}
	tq.place = z.place
	return z, nil
}

// score is position p's normalized attention at layer l so far, and
// whether any query has seen it.
func (z *zipCache) score(l, p int) (float64, bool) {
	var a float64
	n := 0
	for h, acc := range z.acc[l] {
		if z.seen[l][h] > p {
			a += float64(acc[p])
			n += z.seen[l][h] - p
		}
	}
	if n == 0 {
		return 0, false
	}
	return a / float64(n), true
}

// place is the level of a new position: binary16 for a sink, hi for a
// token whose score is among the fraction frac highest.
func (z *zipCache) place(layer, pos int) int {
	if pos < z.levels[z.sink].slots {
		return z.sink
	}
	src := max(layer-1, 0)
	s, ok := z.score(src, pos)
	if !ok {
		return z.lo
	}
	total, m := 0, 0
	for _, n := range z.seen[src] {
		total += n
		m = max(m, n)
	}
	if z.thrAt[src] != total {
		z.thrAt[src] = total
		z.scores = z.scores[:0]
		for p := 0; p < m; p++ {
			if x, ok := z.score(src, p); ok {
				z.scores = append(z.scores, x)
			}
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(z.scores)))
		k := int(math.Round(z.frac * float64(len(z.scores))))
		z.thr[src] = math.Inf(1)
		if k > 0 {
			z.thr[src] = z.scores[k-1]
		}
	}
	if s >= z.thr[src] {
		return z.hi
	}
	return z.lo
}

// Mask implements model.AttentionMasker: zip evicts nothing.
func (z *zipCache) Mask(layer, qhead, pos int, row []float32) {}

// Observe implements model.AttentionMasker: each position's weight is
// added to its accumulated attention.
func (z *zipCache) Observe(layer, qhead, pos int, row []float32, inv float32) {
	acc := z.acc[layer][qhead]
	for p, w := range row {
		acc[p] += w * inv
	}
	z.seen[layer][qhead] = max(z.seen[layer][qhead], pos+1)
}

// Truncate implements model.KVCache: attention received from or by the
// forgotten positions is forgotten too (from queries at or past n).
func (z *zipCache) Truncate(n int) error {
	if err := z.tqCache.Truncate(n); err != nil {
		return err
	}
	for l := range z.acc {
		for h := range z.acc[l] {
			if z.seen[l][h] > n {
				// Weights from queries past n cannot be told apart
				// from the others: start the accumulation again.
				clear(z.acc[l][h])
				z.seen[l][h] = 0
			}
		}
		z.thrAt[l] = -1
	}
	return nil
}

// stairCache is a staircase cache (SAQ's staircase): the newest W1
// positions are held at B1 bits, the W2 before them at B2 bits, …, every
// older position at the last band's bits; a position is requantized from
// its stored form to the next band's bits as it ages out of a band. The
// first S positions are kept whole in binary16 (attention sinks). Rows are
// quantized token-wise in groups of G channels, rotated first unless the
// spec says p.
type stairCache struct {
	*tqCache
	sinks int
}

func newStairCache(cfg *model.Config, positions int, sp *Spec) (*stairCache, error) {
	s := min(sp.TQSinks, positions)
	levels := []tqLevel{{k: rowFmt{16, 0}, v: rowFmt{16, 0}, slots: s}}
	left := positions - s
	for i, b := range sp.StairBits {
		n := left
		if i < len(sp.StairBits)-1 {
			n = min(left, sp.StairWidths[i])
		}
		levels = append(levels, tqLevel{k: rowFmt{b, sp.Group}, v: rowFmt{b, sp.Group}, slots: n})
		left -= n
	}
	tq, err := newTQCache(sp.String(), cfg, positions, levels, sp.Rotate)
	if err != nil {
		return nil, err
	}
	sc := &stairCache{tqCache: tq, sinks: s}
	tq.place = func(layer, pos int) int {
		if pos < s {
			return 0
		}
		return 1
	}
	tq.full = sc.full
	return sc, nil
}

// full makes room in band level i of a layer by moving its oldest
// position down a band (making room there first).
func (sc *stairCache) full(layer, i int) {
	if i == 0 || i == len(sc.levels)-1 {
		return
	}
	if len(sc.free[layer][i+1]) == 0 {
		sc.full(layer, i+1)
		if len(sc.free[layer][i+1]) == 0 {
			return
		}
	}
	for p := 0; p < sc.lens[layer]; p++ {
		if int(sc.lvl[layer][p]) == i {
			sc.move(layer, p, i+1)
			return
		}
	}
}

// parseTQ reads the fields of zip and stair specs (rest after the name).
func parseTQ(s, name, rest string) (*Spec, error) {
	sp := &Spec{Kind: KindZip, ZipHi: DefaultZipHi, ZipLo: DefaultZipLo, ZipFrac: DefaultZipFrac,
		Group: DefaultTQGroup, TQSinks: DefaultTQSinks, Rotate: true}
	if name == "stair" {
		sp = &Spec{Kind: KindStair, StairBits: append([]int(nil), DefaultStairBits...), StairWidths: []int{DefaultStairWin},
			Group: DefaultTQGroup, TQSinks: DefaultTQSinks, Rotate: true}
	}
	seen := map[byte]bool{}
	if rest != "" {
		for _, f := range strings.Split(rest, ":") {
			if f == "" {
				return nil, fmt.Errorf("kv spec %q: empty field", s)
			}
			if seen[f[0]] {
				return nil, fmt.Errorf("kv spec %q: field %q given twice", s, f)
			}
			seen[f[0]] = true
			var err error
			switch {
			case f == "p":
				sp.Rotate = false
			case f[0] == 'g':
				sp.Group, err = parseInt(f[1:], 1, 1<<12)
			case f[0] == 's':
				sp.TQSinks, err = parseInt(f[1:], 0, 1<<12)
			case name == "zip" && f[0] == 'h':
				sp.ZipHi, err = parseTQBits(f[1:])
			case name == "zip" && f[0] == 'l':
				sp.ZipLo, err = parseTQBits(f[1:])
			case name == "zip" && f[0] == 'f':
				sp.ZipFrac, err = parseFrac(f[1:])
			case name == "stair" && f[0] == 'b':
				sp.StairBits, err = parseList(f[1:], parseTQBits)
			case name == "stair" && f[0] == 'w':
				sp.StairWidths, err = parseList(f[1:], func(x string) (int, error) { return parseInt(x, 1, 1<<16) })
			default:
				err = fmt.Errorf("unknown field")
			}
			if err != nil {
				return nil, fmt.Errorf("kv spec %q: field %q: %w", s, f, err)
			}
		}
	}
	if sp.Kind == KindStair && !seen['w'] {
		sp.StairWidths = nil
		for range len(sp.StairBits) - 1 {
			sp.StairWidths = append(sp.StairWidths, DefaultStairWin)
		}
	}
	if sp.Kind == KindStair && len(sp.StairWidths) != len(sp.StairBits)-1 {
		return nil, fmt.Errorf("kv spec %q: %d bands of bits need %d widths, not %d", s, len(sp.StairBits), len(sp.StairBits)-1, len(sp.StairWidths))
	}
	return sp, nil
}

// parseTQBits reads a bit width of a zip or stair level: 1 to 8, or 16
// (binary16).
func parseTQBits(s string) (int, error) {
	b, err := parseInt(s, 1, 16)
	if err != nil || (b > 8 && b != 16) {
		return 0, fmt.Errorf("%q bits: want 1 to 8, or 16 (binary16)", s)
	}
	return b, nil
}

// parseFrac reads a fraction in [0, 1].
func parseFrac(s string) (float64, error) {
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || !(x >= 0 && x <= 1) {
		return 0, fmt.Errorf("%q: want a fraction in [0, 1]", s)
	}
	return x, nil
}

// parseList reads "A/B/C".
func parseList(s string, one func(string) (int, error)) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, "/") {
		x, err := one(f)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	if len(out) > 8 {
		return nil, fmt.Errorf("at most 8 bands")
	}
	return out, nil
}

// tqString is a zip or stair spec in full.
func tqString(sp *Spec) string {
	var b strings.Builder
	if sp.Kind == KindZip {
		fmt.Fprintf(&b, "zip:h%d:l%d:f%s", sp.ZipHi, sp.ZipLo, specNum(sp.ZipFrac))
	} else {
		b.WriteString("stair:b")
		for i, x := range sp.StairBits {
			if i > 0 {
				b.WriteByte('/')
			}
			b.WriteString(strconv.Itoa(x))
		}
		if len(sp.StairWidths) > 0 {
			b.WriteString(":w")
			for i, x := range sp.StairWidths {
				if i > 0 {
					b.WriteByte('/')
				}
				b.WriteString(strconv.Itoa(x))
			}
		}
	}
	fmt.Fprintf(&b, ":g%d:s%d", sp.Group, sp.TQSinks)
	if !sp.Rotate {
		b.WriteString(":p")
	}
	return b.String()
}
