package kv

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
)

// GEAR defaults: 4-bit token-wise quantization in groups of 32, 2% of each
// row kept as sparse outliers, a rank-2 residual per chunk of 64 positions
// (GEAR's s = 2%, a rank of a few per cent of the head dimension, and its
// streaming buffer).
const (
	DefaultGEARBits    = 4
	DefaultGEAROutlier = 2
	DefaultGEARRank    = 2
	DefaultGEARChunk   = 64
)

// gearCache is GEAR (Kang et al. 2024, "GEAR: An Efficient KV Cache
// Compression Recipe for Near-Lossless Generative Inference of LLM"): each
// chunk of C positions of a KV head's keys (and, apart, its values) X is
// held as D̂ + S + L. S are the sparse outliers, the largest and smallest
// o/2 per cent of each row, kept in binary16 with their channel; D̂ is the
// rest, quantized token-wise to B bits in groups of G channels (the
// outliers' places zero); L = A·Bᵀ is a rank-r approximation of the
// residual X − D̂ − S, found by power iteration on the residual's channel
// Gram matrix, A (C×r) and B (head_dim×r) in binary16. The newest, still
// open chunk is held in binary16 (GEAR's streaming buffer) and is
// compressed once it is full. Scores are q·D̂ on the codes, plus the
// outliers' products, plus A·(Bᵀq) with Bᵀq taken once per chunk; sums
// add Σ w·(D̂+S) and B·(Σ w·A).
type gearCache struct {
	sp            Spec
	cap, hd, c, r int
	nOut          int // outliers per row
	f             rowFmt
	rowB, outB    int // bytes of one quantized row and of its outliers
	chunks        int
	kvDim, lens   []int
	// per layer, keys [0] and values [1]: heads × cap rows and outliers,
	// heads × chunks factor pairs, heads × C binary16 open rows.
	rows, outs, fac, open [][2][]byte
	tmp                   []float32
}

func newGEARCache(cfg *model.Config, positions int, sp *Spec) (*gearCache, error) {
	hd := cfg.HeadDim
	if hd%sp.Group != 0 {
		return nil, fmt.Errorf("kv %s: head dimension %d is not a whole number of %d-channel groups", sp, hd, sp.Group)
	}
	if hd > 256 {
		return nil, fmt.Errorf("kv %s: head dimension %d over 256 (outlier channels are one byte)", sp, hd)
	}
	g := &gearCache{sp: *sp, cap: positions, hd: hd, c: min(sp.Chunk, positions), r: min(sp.GearRank, hd, sp.Chunk),
		nOut: int(math.Round(sp.GearOutlier / 100 * float64(hd))), f: rowFmt{sp.KBits, sp.Group},
		kvDim: make([]int, cfg.NLayers), lens: make([]int, cfg.NLayers)}
	g.rowB, g.outB = g.f.bytes(hd), 3*g.nOut
	g.chunks = positions / g.c
	n := 2 * positions * hd
	g.tmp = make([]float32, n)
	for l := 0; l < cfg.NLayers; l++ {
		g.kvDim[l] = cfg.KVDim(l)
		heads := g.kvDim[l] / hd
		var rows, outs, fac, open [2][]byte
		for kv := 0; kv < 2; kv++ {
			rows[kv] = make([]byte, heads*g.chunks*g.c*g.rowB)
			outs[kv] = make([]byte, heads*g.chunks*g.c*g.outB)
			fac[kv] = make([]byte, heads*g.chunks*2*g.r*(g.c+hd))
			open[kv] = make([]byte, heads*g.c*2*hd)
		}
		g.rows, g.outs, g.fac, g.open = append(g.rows, rows), append(g.outs, outs), append(g.fac, fac), append(g.open, open)
	}
	return g, nil
}

// compressed is how many leading positions of a layer holding n are in
// closed chunks.
func (g *gearCache) compressed(n int) int { return n / g.c * g.c }

func (g *gearCache) openRow(layer, kv, h, p int) []byte {
	off := (h*g.c + p%g.c) * 2 * g.hd
	return g.open[layer][kv][off : off+2*g.hd]
}

func (g *gearCache) qRow(layer, kv, h, p int) []byte {
	off := (h*g.chunks*g.c + p) * g.rowB
	return g.rows[layer][kv][off : off+g.rowB]
}

func (g *gearCache) outRow(layer, kv, h, p int) []byte {
	off := (h*g.chunks*g.c + p) * g.outB
	return g.outs[layer][kv][off : off+g.outB]
}

// factors are chunk ch's A (C×r, row-major) and B (head_dim×r) in
// binary16.
func (g *gearCache) factors(layer, kv, h, ch int) (a, b []byte) {
	per := 2 * g.r * (g.c + g.hd)
	off := (h*g.chunks + ch) * per
	f := g.fac[layer][kv][off : off+per]
	return f[:2*g.r*g.c], f[2*g.r*g.c:]
}

// Append implements model.KVCache.
func (g *gearCache) Append(layer int, k, v []float32) error {
	if layer < 0 || layer >= len(g.kvDim) {
		return fmt.Errorf("kv %s: layer %d of %d", &g.sp, layer, len(g.kvDim))
	}
	d, pos := g.kvDim[layer], g.lens[layer]
	if len(k) != d || len(v) != d {
		return fmt.Errorf("kv %s: layer %d: key and value of %d and %d floats, want %d", &g.sp, layer, len(k), len(v), d)
	}
	if pos >= g.cap {
		return fmt.Errorf("kv %s: layer %d: position %d outside capacity %d", &g.sp, layer, pos, g.cap)
	}
	for h := 0; h < d/g.hd; h++ {
		putF16Row(g.openRow(layer, 0, h, pos), k[h*g.hd:(h+1)*g.hd])
		putF16Row(g.openRow(layer, 1, h, pos), v[h*g.hd:(h+1)*g.hd])
	}
	g.lens[layer]++
	if (pos+1)%g.c == 0 && pos < g.chunks*g.c {
		for h := 0; h < d/g.hd; h++ {
			g.compress(layer, 0, h, pos+1-g.c)
			g.compress(layer, 1, h, pos+1-g.c)
		}
	}
	return nil
}

// compress turns the open chunk starting at p0 of head h's keys (kv 0) or
// values (kv 1) into D̂ + S + L.
func (g *gearCache) compress(layer, kv, h, p0 int) {
	hd, c := g.hd, g.c
	x, res := g.tmp[:c*hd], g.tmp[c*hd:2*c*hd]
	idx, deq := make([]int, hd), make([]float32, hd)
	for t := 0; t < c; t++ {
		row := x[t*hd : (t+1)*hd]
		kernel.F16ToF32Row(row, g.openRow(layer, kv, h, p0+t))
		// S: the nOut entries furthest from the row's median, half
		// from each end.
		out := g.outRow(layer, kv, h, p0+t)
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return row[idx[a]] < row[idx[b]] })
		sel := append(append([]int(nil), idx[:g.nOut/2]...), idx[hd-(g.nOut-g.nOut/2):]...)
		r := res[t*hd : (t+1)*hd]
		copy(r, row)
		for j, ch := range sel {
			out[3*j] = byte(ch)
			putU16(out[3*j+1:], tensor.F32ToF16(row[ch]))
			r[ch] = 0
		}
		q := g.qRow(layer, kv, h, p0+t)
		g.f.quant(q, r)
		// The residual X − D̂ − S.
		g.f.dequant(deq, q)
		for ch := range r {
			r[ch] = row[ch] - deq[ch]
		}
		for j, ch := range sel {
			r[ch] -= f16At(out[3*j+1:], 0)
		}
	}
	a, b := g.factors(layer, kv, h, p0/c)
	lowRank(res, c, hd, g.r, a, b)
}

// lowRank stores into a (n×r) and b (d×r), binary16, a rank-r
// approximation a·bᵀ of the n×d matrix m: b's columns are the leading
// eigenvectors of mᵀm (power iteration with deflation), a = m·b with
// b rounded to binary16 first, so that a·bᵀ is the projection of m the
// stored b gives.
func lowRank(m []float32, n, d, r int, a, b []byte) {
	gram := make([]float64, d*d)
	for t := 0; t < n; t++ {
		row := m[t*d : (t+1)*d]
		for i, x := range row {
			if x == 0 {
				continue
			}
			for j, y := range row {
				gram[i*d+j] += float64(x) * float64(y)
			}
		}
	}
	vec, nv := make([]float64, d), make([]float64, d)
	bf := make([]float32, d*r)
	for k := 0; k < r; k++ {
		for i := range vec {
			vec[i] = 1 / math.Sqrt(float64(d)) * float64(1+i%3)
		}
		lambda := 0.0
		for it := 0; it < 30; it++ {
			for i := range nv {
				var s float64
				for j, y := range vec {
					s += gram[i*d+j] * y
				}
				nv[i] = s
			}
			var norm float64
			for _, y := range nv {
				norm += y * y
			}
			norm = math.Sqrt(norm)
			if norm == 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
				clear(vec)
				break
			}
			lambda = norm
			for i := range vec {
				vec[i] = nv[i] / norm
			}
		}
		for i := range vec {
			bf[i*r+k] = f16Round(float32(vec[i]))
			for j := range vec {
				gram[i*d+j] -= lambda * vec[i] * vec[j]
			}
		}
	}
	for i, x := range bf {
		putU16(b[2*i:], tensor.F32ToF16(x))
	}
	for t := 0; t < n; t++ {
		row := m[t*d : (t+1)*d]
		for k := 0; k < r; k++ {
			var s float32
			for i, x := range row {
				s += x * bf[i*r+k]
			}
			putU16(a[2*(t*r+k):], tensor.F32ToF16(s))
		}
	}
}

func (g *gearCache) check(layer, head, n int) error {
	return checkAccess(&g.sp, g.kvDim, g.lens, g.hd, layer, head, n)
}

// Scores implements model.KVCache.
func (g *gearCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
	if err := g.check(layer, head, n); err != nil {
		return err
	}
	if nq > 0 && (len(q) < (nq-1)*qs+g.hd || len(dst) < (nq-1)*ds+n) {
		return fmt.Errorf("kv %s: layer %d: %d queries: buffers too small", &g.sp, layer, nq)
	}
	if len(scratch) < g.ScratchSize() {
		return fmt.Errorf("kv %s: scratch of %d floats, want %d", &g.sp, len(scratch), g.ScratchSize())
	}
	hd, r := g.hd, g.r
	nc := min(n, g.compressed(g.lens[layer]))
	bq, row := scratch[hd:hd+r], scratch[hd+r:2*hd+r]
	for j := 0; j < nq; j++ {
		qi := q[j*qs : j*qs+hd]
		out := dst[j*ds : j*ds+n]
		for ch := 0; ch*g.c < nc; ch++ {
			a, b := g.factors(layer, 0, head, ch)
			for k := 0; k < r; k++ {
				var s float32
				for i, x := range qi {
					s += x * f16At(b, i*r+k)
				}
				bq[k] = s
			}
			for p := ch * g.c; p < min(nc, (ch+1)*g.c); p++ {
				s := g.f.dot(qi, g.qRow(layer, 0, head, p))
				o := g.outRow(layer, 0, head, p)
				for e := 0; e < g.nOut; e++ {
					s += qi[o[3*e]] * f16At(o[3*e+1:], 0)
				}
				t := p - ch*g.c
				for k := 0; k < r; k++ {
					s += f16At(a, t*r+k) * bq[k]
				}
				out[p] = scale * s
			}
		}
		for p := nc; p < n; p++ {
			kernel.F16ToF32Row(row, g.openRow(layer, 0, head, p))
			var s float32
			for i, x := range qi {
				s += x * row[i]
			}
			out[p] = scale * s
		}
	}
	return nil
}

// WeightedSum implements model.KVCache.
func (g *gearCache) WeightedSum(layer, head int, w, dst []float32, scratch []float32) error {
	if err := g.check(layer, head, len(w)); err != nil {
		return err
	}
	if len(dst) != g.hd {
		return fmt.Errorf("kv %s: layer %d: output of %d floats for head_dim %d", &g.sp, layer, len(dst), g.hd)
	}
	if len(scratch) < g.ScratchSize() {
		return fmt.Errorf("kv %s: scratch of %d floats, want %d", &g.sp, len(scratch), g.ScratchSize())
	}
	hd, r := g.hd, g.r
	nc := min(len(w), g.compressed(g.lens[layer]))
	wa, row := scratch[hd:hd+r], scratch[hd+r:2*hd+r]
	clear(dst)
	for ch := 0; ch*g.c < nc; ch++ {
		a, b := g.factors(layer, 1, head, ch)
		clear(wa)
		for p := ch * g.c; p < min(nc, (ch+1)*g.c); p++ {
			wp := w[p]
			g.f.axpy(dst, wp, g.qRow(layer, 1, head, p))
			o := g.outRow(layer, 1, head, p)
			for e := 0; e < g.nOut; e++ {
				dst[o[3*e]] += wp * f16At(o[3*e+1:], 0)
			}
			t := p - ch*g.c
			for k := 0; k < r; k++ {
				wa[k] += wp * f16At(a, t*r+k)
			}
		}
		for i := range dst {
			var s float32
			for k := 0; k < r; k++ {
				s += f16At(b, i*r+k) * wa[k]
			}
			dst[i] += s
		}
	}
	for p := nc; p < len(w); p++ {
		kernel.F16ToF32Row(row, g.openRow(layer, 1, head, p))
		for i, x := range row {
			dst[i] += w[p] * x
		}
	}
	return nil
}

// rowAt widens head h's key (kv 0) or value (kv 1) at position p as
// attention sees it.
func (g *gearCache) rowAt(layer, kv, h, p int, dst []float32) {
	if p >= g.compressed(g.lens[layer]) {
		kernel.F16ToF32Row(dst, g.openRow(layer, kv, h, p))
		return
	}
	g.f.dequant(dst, g.qRow(layer, kv, h, p))
	o := g.outRow(layer, kv, h, p)
	for e := 0; e < g.nOut; e++ {
		dst[o[3*e]] += f16At(o[3*e+1:], 0)
	}
	a, b := g.factors(layer, kv, h, p/g.c)
	t := p % g.c
	for i := range dst {
		var s float32
		for k := 0; k < g.r; k++ {
			s += f16At(a, t*g.r+k) * f16At(b, i*g.r+k)
		}
		dst[i] += s
	}
}

// Truncate implements model.KVCache. Positions of a closed chunk that now
// reaches past n return to the open chunk in the form attention saw.
func (g *gearCache) Truncate(n int) error {
	if n < 0 || n > g.Len() {
		return fmt.Errorf("kv %s: truncate to %d of %d positions", &g.sp, n, g.Len())
	}
	row := make([]float32, g.hd)
	for l, old := range g.lens {
		if n >= old {
			continue
		}
		oc, nc := g.compressed(old), g.compressed(n)
		for h := 0; h < g.kvDim[l]/g.hd; h++ {
			for kv := 0; kv < 2; kv++ {
				for p := nc; p < min(n, oc); p++ {
					g.rowAt(l, kv, h, p, row)
					putF16Row(g.openRow(l, kv, h, p), row)
				}
			}
		}
		g.lens[l] = n
	}
	return nil
}

// Len implements model.KVCache.
func (g *gearCache) Len() int { return minLen(g.lens) }

// Cap implements model.KVCache.
func (g *gearCache) Cap() int { return g.cap }

// ScratchSize implements model.KVCache: group sums, the rank-r products
// and one widened row.
func (g *gearCache) ScratchSize() int { return 2*g.hd + g.r }

// Bytes implements model.KVCache: codes with their scales and minimums,
// outliers with their channels, the factors of every chunk and the
// binary16 open chunk.
func (g *gearCache) Bytes() int64 {
	var n int64
	for l := range g.rows {
		for kv := 0; kv < 2; kv++ {
			n += int64(len(g.rows[l][kv]) + len(g.outs[l][kv]) + len(g.fac[l][kv]) + len(g.open[l][kv]))
		}
	}
	return n
}

// ReadKV implements model.KVReader.
func (g *gearCache) ReadKV(layer, from, to int, k, v []float32) error {
	if err := checkRead(g.sp.String(), g.kvDim, g.lens, layer, from, to, k, v); err != nil {
		return err
	}
	d := g.kvDim[layer]
	for h := 0; h < d/g.hd; h++ {
		for p := from; p < to; p++ {
			off := (p-from)*d + h*g.hd
			g.rowAt(layer, 0, h, p, k[off:off+g.hd])
			g.rowAt(layer, 1, h, p, v[off:off+g.hd])
		}
	}
	return nil
}

// dequant returns the first n keys and values of KV head head of layer as
// the cache holds them, for tests.
func (g *gearCache) dequant(layer, head, n int) (k, v [][]float32) {
	for p := 0; p < n; p++ {
		kr, vr := make([]float32, g.hd), make([]float32, g.hd)
		g.rowAt(layer, 0, head, p, kr)
		g.rowAt(layer, 1, head, p, vr)
		k, v = append(k, kr), append(v, vr)
	}
	return k, v
}

// parseGEAR reads "[bB][:gG][:oO][:rR][:cC]" after "gear:".
func parseGEAR(s, rest string) (*Spec, error) {
	sp := &Spec{Kind: KindGEAR, KBits: DefaultGEARBits, Group: DefaultTQGroup, GearOutlier: DefaultGEAROutlier,
		GearRank: DefaultGEARRank, Chunk: DefaultGEARChunk}
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
			switch f[0] {
			case 'b':
				sp.KBits, err = parseInt(f[1:], 1, 8)
			case 'g':
				sp.Group, err = parseInt(f[1:], 1, 1<<12)
			case 'o':
				sp.GearOutlier, err = strconv.ParseFloat(f[1:], 64)
				if err != nil || !(sp.GearOutlier >= 0 && sp.GearOutlier <= 50) {
					err = fmt.Errorf("%q: want a percentage of each row in [0, 50]", f[1:])
				}
			case 'r':
				sp.GearRank, err = parseInt(f[1:], 0, 64)
			case 'c':
				sp.Chunk, err = parseInt(f[1:], 1, 1<<12)
			default:
				err = fmt.Errorf("unknown field (want bB, gG, oO, rR or cC)")
			}
			if err != nil {
				return nil, fmt.Errorf("kv spec %q: field %q: %w", s, f, err)
			}
		}
	}
	return sp, nil
}

// gearString is a gear spec in full.
func gearString(sp *Spec) string {
	return fmt.Sprintf("gear:b%d:g%d:o%s:r%d:c%d", sp.KBits, sp.Group, specNum(sp.GearOutlier), sp.GearRank, sp.Chunk)
}
