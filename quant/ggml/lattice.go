package ggml

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/terse-llm/terse/tensor"
)

// Lattice blocks
//
// A LatticeBlock is to the lattice types (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
// IQ3_S) what a BlockGrid is to the scalar types: one encoded super-block
// with its scales fixed, whose runs of 8 elements an outer algorithm (block
// LDLQ in package gptqggml) may recode one at a time. A run's code is its
// grid point (one index into the 8-dimensional grid of the IQ2 types, or
// two into the 4-dimensional grid of the IQ3 types, first half first) and
// its 8 sign bits; the types that store only 7 sign bits (IQ2_XXS, IQ2_XS,
// IQ3_XXS) require an even number of negative elements.
//
// The run's scale db is computed from the block's stored scales exactly as
// the dequantizer computes it, and element j's value is db·grid byte j,
// negated when sign bit j is set, so Values is bit for bit what Dequantize
// yields for a block holding that code.

// RunCode is the code of one run of 8 elements of a lattice block.
type RunCode struct {
	// Index is the grid index of the run (Index[0]), or of its two halves
	// for the 4-dimensional IQ3 grids.
	Index [2]uint16
	// Signs has bit j set when element j is negative.
	Signs uint8
}

// latticeFormat describes one lattice type's block layout.
type latticeFormat struct {
	elems, bytes int
	dim          int      // 8 (one grid point per run) or 4 (two)
	parity       bool     // 7 stored sign bits: even negatives only
	grid         []uint64 // each entry dim magnitudes, a byte each
	// scale is run r's scale db, computed as the dequantizer does.
	scale func(b []byte, r int) float32
	read  func(b []byte, r int) RunCode
	write func(b []byte, r int, c RunCode)

	// Built on first use: the distinct magnitudes of the grid, ascending,
	// and every entry's magnitudes as indices into them.
	once   sync.Once
	mags   []uint8
	levels [][8]uint8
}

func (f *latticeFormat) init() {
	f.once.Do(func() {
		seen := [256]bool{}
		for _, g := range f.grid {
			for j := 0; j < f.dim; j++ {
				seen[gridByte(g, j)] = true
			}
		}
		var at [256]uint8
		for v, ok := range seen {
			if ok {
				at[v] = uint8(len(f.mags))
				f.mags = append(f.mags, uint8(v))
			}
		}
		f.levels = make([][8]uint8, len(f.grid))
		for k, g := range f.grid {
			for j := 0; j < f.dim; j++ {
				f.levels[k][j] = at[gridByte(g, j)]
			}
		}
	})
}

func gridOf64(g []uint32) []uint64 {
	out := make([]uint64, len(g))
	for i, v := range g {
		out[i] = uint64(v)
	}
	return out
}

// latticeFormats are the lattice types a LatticeBlock handles.
var latticeFormats = map[tensor.DType]*latticeFormat{
	tensor.IQ2_XXS: {
		elems: iq2xxsElems, bytes: iq2xxsBytes, dim: 8, parity: true, grid: iq2xxsGrid[:],
		scale: func(b []byte, r int) float32 {
			d := f16(b)
			a1 := binary.LittleEndian.Uint32(b[2+8*(r/4)+4:])
			return d * (0.5 + float32(a1>>28)) * 0.25
		},
		read: func(b []byte, r int) RunCode {
			g, l := r/4, r%4
			a1 := binary.LittleEndian.Uint32(b[2+8*g+4:])
			return RunCode{Index: [2]uint16{uint16(b[2+8*g+l])}, Signs: iqSigns[a1>>(7*uint(l))&127]}
		},
		write: func(b []byte, r int, c RunCode) {
			g, l := r/4, r%4
			b[2+8*g+l] = byte(c.Index[0])
			a1 := binary.LittleEndian.Uint32(b[2+8*g+4:])
			a1 = a1&^(127<<(7*uint(l))) | uint32(c.Signs&127)<<(7*uint(l))
			binary.LittleEndian.PutUint32(b[2+8*g+4:], a1)
		},
	},
	tensor.IQ2_XS: {
		elems: iq2xsElems, bytes: iq2xsBytes, dim: 8, parity: true, grid: iq2xsGrid[:],
		scale: func(b []byte, r int) float32 {
			d := f16(b)
			sc := b[66+r/4]
			if r%4 < 2 {
				return d * (0.5 + float32(sc&0xf)) * 0.25
			}
			return d * (0.5 + float32(sc>>4)) * 0.25
		},
		read: func(b []byte, r int) RunCode {
			v := binary.LittleEndian.Uint16(b[2+2*r:])
			return RunCode{Index: [2]uint16{v & 511}, Signs: iqSigns[v>>9]}
		},
		write: func(b []byte, r int, c RunCode) {
			binary.LittleEndian.PutUint16(b[2+2*r:], c.Index[0]&511|uint16(c.Signs&127)<<9)
		},
	},
	tensor.IQ2_S: {
		elems: iq2sElems, bytes: iq2sBytes, dim: 8, grid: iq2sGrid[:],
		scale: func(b []byte, r int) float32 {
			d := f16(b)
			sc := b[74+r/4]
			if r%4 < 2 {
				return d * (0.5 + float32(sc&0xf)) * 0.25
			}
			return d * (0.5 + float32(sc>>4)) * 0.25
		},
		read: func(b []byte, r int) RunCode {
			return RunCode{Index: [2]uint16{uint16(iq2sIndex(b, r/4, r%4))}, Signs: b[34+r]}
		},
		write: func(b []byte, r int, c RunCode) {
			g, l := r/4, uint(r%4)
			b[2+r] = byte(c.Index[0])
			b[66+g] = b[66+g]&^(3<<(2*l)) | byte(c.Index[0]>>8&3)<<(2*l)
			b[34+r] = c.Signs
		},
	},
	tensor.IQ3_XXS: {
		elems: iq3xxsElems, bytes: iq3xxsBytes, dim: 4, parity: true, grid: gridOf64(iq3xxsGrid[:]),
		scale: func(b []byte, r int) float32 {
			d := f16(b)
			ss := binary.LittleEndian.Uint32(b[66+4*(r/4):])
			return d * (0.5 + float32(ss>>28)) * 0.5
		},
		read: func(b []byte, r int) RunCode {
			g, l := r/4, r%4
			ss := binary.LittleEndian.Uint32(b[66+4*g:])
			return RunCode{Index: [2]uint16{uint16(b[2+8*g+2*l]), uint16(b[2+8*g+2*l+1])}, Signs: iqSigns[ss>>(7*uint(l))&127]}
		},
		write: func(b []byte, r int, c RunCode) {
			g, l := r/4, r%4
			b[2+8*g+2*l] = byte(c.Index[0])
			b[2+8*g+2*l+1] = byte(c.Index[1])
			ss := binary.LittleEndian.Uint32(b[66+4*g:])
			ss = ss&^(127<<(7*uint(l))) | uint32(c.Signs&127)<<(7*uint(l))
			binary.LittleEndian.PutUint32(b[66+4*g:], ss)
		},
	},
	tensor.IQ3_S: {
		elems: iq3sElems, bytes: iq3sBytes, dim: 4, grid: gridOf64(iq3sGrid[:]),
		scale: func(b []byte, r int) float32 {
			return f16(b) * float32(iq3sScale(b, r/4))
		},
		read: func(b []byte, r int) RunCode {
			g, l := r/4, r%4
			return RunCode{Index: [2]uint16{uint16(iq3sIndex(b, g, l, 0)), uint16(iq3sIndex(b, g, l, 1))}, Signs: b[74+r]}
		},
		write: func(b []byte, r int, c RunCode) {
			g, l := r/4, uint(r%4)
			for h := uint(0); h < 2; h++ {
				b[2+8*g+2*int(l)+int(h)] = byte(c.Index[h])
				bit := uint(2*l + h)
				b[66+g] = b[66+g]&^(1<<bit) | byte(c.Index[h]>>8&1)<<bit
			}
			b[74+r] = c.Signs
		},
	},
}

// LatticeSupported reports whether LatticeBlock handles type dt.
func LatticeSupported(dt tensor.DType) bool { return latticeFormats[dt] != nil }

// LatticeBlock is one encoded block of a lattice type with its scales
// fixed. The zero value is unusable; call Reset.
type LatticeBlock struct {
	dt tensor.DType
	f  *latticeFormat
	db [32]float32 // each run's scale
}

// LatticeRun is the number of elements of one run.
const LatticeRun = 8

// Reset makes lb the lattice block of the encoded block blk (exactly
// dt.BlockBytes() bytes) of type dt: its run scales are read from blk.
func (lb *LatticeBlock) Reset(dt tensor.DType, blk []byte) error {
	f := latticeFormats[dt]
	if f == nil {
		return fmt.Errorf("lattice block: type %s is not a supported lattice type", dt)
	}
	if len(blk) != f.bytes {
		return fmt.Errorf("lattice block: %s block has %d bytes, want %d", dt, len(blk), f.bytes)
	}
	f.init()
	lb.dt, lb.f = dt, f
	for r := 0; r < f.elems/LatticeRun; r++ {
		lb.db[r] = f.scale(blk, r)
	}
	return nil
}

// DType is the block's type.
func (lb *LatticeBlock) DType() tensor.DType { return lb.dt }

// Runs is the number of runs of 8 in a block (32).
func (lb *LatticeBlock) Runs() int { return lb.f.elems / LatticeRun }

// Scale is run r's scale db.
func (lb *LatticeBlock) Scale(r int) float32 { return lb.db[r] }

// Code reads run r's code from the encoded block blk.
func (lb *LatticeBlock) Code(blk []byte, r int) RunCode { return lb.f.read(blk, r) }

// Encode writes code c as run r of the encoded block blk, leaving the
// scales and the other runs as they are. For a type with 7 stored sign
// bits, c.Signs must have an even number of bits set.
func (lb *LatticeBlock) Encode(blk []byte, r int, c RunCode) { lb.f.write(blk, r, c) }

// Values writes the 8 values run r takes under code c into v: bit for bit
// what Dequantize yields for them.
func (lb *LatticeBlock) Values(r int, c RunCode, v []float32) {
	db := lb.db[r]
	f := lb.f
	for j := 0; j < LatticeRun; j++ {
		g := f.grid[c.Index[j/f.dim]]
		a := db * float32(gridByte(g, j%f.dim))
		if c.Signs>>uint(j)&1 != 0 {
			a = -a
		}
		v[j] = a
	}
}

// latticeCand is one candidate code with its diagonal cost.
type latticeCand struct {
	c    RunCode
	cost float64
}

// topK keeps the k cheapest candidates, cheapest first.
type topK struct {
	n int
	c [latticeMaxCand]latticeCand
}

// latticeMaxCand bounds Nearest's candidates.
const latticeMaxCand = 16

func (t *topK) add(k int, c RunCode, cost float64) {
	if !(cost < math.Inf(1)) {
		return
	}
	if t.n == k && cost >= t.c[t.n-1].cost {
		return
	}
	i := min(t.n, k-1)
	if t.n < k {
		t.n++
	}
	for i > 0 && t.c[i-1].cost > cost {
		t.c[i] = t.c[i-1]
		i--
	}
	t.c[i] = latticeCand{c, cost}
}

// Nearest returns the code of run r nearest x (8 values): it ranks every
// grid point by the weighted squared error Σ w_j·(x_j − v_j)² (each point
// with its best signs under the parity rule), keeps the cand cheapest
// (1 ≤ cand ≤ 16), and among them returns the one of least
// (x−v)ᵀ·m·(x−v), m the 8×8 row-major metric (nil: the weighted error).
// The run's values under the returned code are written into v.
func (lb *LatticeBlock) Nearest(r int, x, w []float32, m []float64, cand int, v []float32) RunCode {
	cand = max(1, min(cand, latticeMaxCand))
	f := lb.f
	db := lb.db[r]
	// Per element and magnitude: the cost with the better sign, the
	// extra cost of the other sign, and whether the better sign is '−'.
	nm := len(f.mags)
	var base, pen [LatticeRun][16]float64
	var neg [LatticeRun][16]bool
	for j := 0; j < LatticeRun; j++ {
		xj, wj := float64(x[j]), float64(w[j])
		for li, mg := range f.mags[:nm] {
			a := float64(db * float32(mg))
			d := math.Abs(xj) - math.Abs(a)
			base[j][li] = wj * d * d
			pen[j][li] = 4 * wj * math.Abs(xj*a)
			neg[j][li] = xj*a < 0
		}
	}
	var best topK
	if f.dim == 8 {
		for k, lv := range f.levels {
			var cost, minPen float64
			minPen = math.Inf(1)
			var signs uint8
			mj := 0
			for j := 0; j < LatticeRun; j++ {
				li := lv[j]
				cost += base[j][li]
				if neg[j][li] {
					signs |= 1 << uint(j)
				}
				if p := pen[j][li]; p < minPen {
					minPen, mj = p, j
				}
			}
			if f.parity && oddBits(signs) {
				cost += minPen
				signs ^= 1 << uint(mj)
			}
			best.add(cand, RunCode{Index: [2]uint16{uint16(k)}, Signs: signs}, cost)
		}
	} else {
		// Two halves of 4: each half's cheapest points, and its cheapest
		// with one sign flipped, then every pair of those.
		type half struct {
			top      topK
			flip     latticeCand // cheapest cost + flip penalty
			flipPen  [16]float64
			flipElem [16]int
		}
		var hs [2]half
		hk := min(cand, 6)
		for h := 0; h < 2; h++ {
			hs[h].flip.cost = math.Inf(1)
			for k, lv := range f.levels {
				var cost float64
				minPen := math.Inf(1)
				var signs uint8
				mj := 0
				for jj := 0; jj < 4; jj++ {
					j := 4*h + jj
					li := lv[jj]
					cost += base[j][li]
					if neg[j][li] {
						signs |= 1 << uint(j)
					}
					if p := pen[j][li]; p < minPen {
						minPen, mj = p, j
					}
				}
				c := RunCode{Signs: signs}
				c.Index[h] = uint16(k)
				hs[h].top.add(hk, c, cost)
				if cost+minPen < hs[h].flip.cost {
					fc := c
					fc.Signs ^= 1 << uint(mj)
					hs[h].flip = latticeCand{fc, cost + minPen}
				}
			}
		}
		// Candidate lists per half: the top points with their signs, and
		// the cheapest flipped point (already flipped).
		for a := 0; a <= hs[0].top.n; a++ {
			for b := 0; b <= hs[1].top.n; b++ {
				var ca, cb latticeCand
				if a < hs[0].top.n {
					ca = hs[0].top.c[a]
				} else if ca = hs[0].flip; !(ca.cost < math.Inf(1)) {
					continue
				}
				if b < hs[1].top.n {
					cb = hs[1].top.c[b]
				} else if cb = hs[1].flip; !(cb.cost < math.Inf(1)) {
					continue
				}
				c := RunCode{Index: [2]uint16{ca.c.Index[0], cb.c.Index[1]}, Signs: ca.c.Signs | cb.c.Signs}
				cost := ca.cost + cb.cost
				if f.parity && oddBits(c.Signs) {
					cost = lb.fixParity(r, &c, x, w)
				}
				best.add(cand, c, cost)
			}
		}
	}
	if best.n == 0 {
		// every cost was NaN or infinite (non-finite x or w)
		c := RunCode{}
		lb.Values(r, c, v)
		return c
	}
	bc := best.c[0].c
	if m != nil && best.n > 1 {
		bq := math.Inf(1)
		var vv [LatticeRun]float32
		for _, cd := range best.c[:best.n] {
			lb.Values(r, cd.c, vv[:])
			var e [LatticeRun]float64
			for j := range e {
				e[j] = float64(x[j]) - float64(vv[j])
			}
			q := quadForm(m, &e)
			if q < bq {
				bq, bc = q, cd.c
			}
		}
	}
	lb.Values(r, bc, v)
	return bc
}

// fixParity flips the sign of the element of c whose flip costs least
// in the weighted error (with parity, c must have an even number of
// negatives) and returns that weighted error.
func (lb *LatticeBlock) fixParity(r int, c *RunCode, x, w []float32) float64 {
	var v [LatticeRun]float32
	lb.Values(r, *c, v[:])
	minPen, mj := math.Inf(1), 0
	for j := 0; j < LatticeRun; j++ {
		// flipping v_j changes w·(x−v)² by 4·w·x·v
		p := 4 * float64(w[j]) * float64(x[j]) * float64(v[j])
		if p < minPen {
			minPen, mj = p, j
		}
	}
	c.Signs ^= 1 << uint(mj)
	v[mj] = -v[mj]
	var cost float64
	for j := 0; j < LatticeRun; j++ {
		d := float64(x[j]) - float64(v[j])
		cost += float64(w[j]) * d * d
	}
	return cost
}

// quadForm returns eᵀ·m·e for the 8×8 row-major m.
func quadForm(m []float64, e *[LatticeRun]float64) float64 {
	var q float64
	for i := 0; i < LatticeRun; i++ {
		row := m[i*LatticeRun : i*LatticeRun+LatticeRun]
		var s float64
		for j, mij := range row {
			s += mij * e[j]
		}
		q += e[i] * s
	}
	return q
}

// oddBits reports whether b has an odd number of bits set.
func oddBits(b uint8) bool {
	b ^= b >> 4
	b ^= b >> 2
	b ^= b >> 1
	return b&1 != 0
}
