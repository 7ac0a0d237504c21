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
// IQ3_S, and IQ1_S, IQ1_M: see lattice_iq1.go) what a BlockGrid is to the scalar types: one encoded super-block
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
	// Signs has bit j set when element j is negative (unused for IQ1_S
	// and IQ1_M).
	Signs uint8
	// Shift is set when the IQ1 shift of the run is −IQ1_DELTA (IQ1_M;
	// for IQ1_S the group's shift, which Encode ignores: see SetShift).
	Shift bool
}

// latticeFormat describes one lattice type's block layout.
type latticeFormat struct {
	elems, bytes int
	dim          int      // 8 (one grid point per run) or 4 (two)
	parity       bool     // 7 stored sign bits: even negatives only
	grid         []uint64 // each entry dim magnitudes, a byte each
	// scale is run r's scale db, computed as the dequantizer does.
	scale func(b []byte, r int) float32
	// scaleRuns runs share one 4-bit sub-block scale ls; getLS and setLS
	// read and write that of run r.
	scaleRuns int
	getLS     func(b []byte, r int) int
	setLS     func(b []byte, r, ls int)
	read      func(b []byte, r int) RunCode
	write     func(b []byte, r int, c RunCode)

	// The IQ1 types (lattice_iq1.go): runs are grid points plus a shift;
	// runShift: each run stores its shift sign (IQ1_M), else the scale
	// group does (IQ1_S), read and written by getShift and setShift.
	iq1         bool
	runShift    bool
	scaleLevels int // levels of the sub-block scale (0: 16)
	getShift    func(b []byte, r int) bool
	setShift    func(b []byte, r int, neg bool)

	// Built on first use: the distinct magnitudes of the grid, ascending,
	// and every entry's magnitudes as indices into them.
	once sync.Once
	mags []uint8
	offs [][8]uint8 // entry k, element j: j·len(mags) + its magnitude's index
}

// latticeMaxMags bounds the distinct magnitudes of a grid.
const latticeMaxMags = 16

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
		if len(f.mags) > latticeMaxMags {
			panic("ggml: lattice grid with more than 16 magnitudes")
		}
		nm := len(f.mags)
		f.offs = make([][8]uint8, len(f.grid))
		for k, g := range f.grid {
			for j := 0; j < f.dim; j++ {
				f.offs[k][j] = uint8(j*nm) + at[gridByte(g, j)]
			}
			if f.dim == 4 {
				// the second half's elements are 4…7
				for j := 0; j < 4; j++ {
					f.offs[k][4+j] = uint8((4+j)*nm) + at[gridByte(g, j)]
				}
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
		scaleRuns: 4,
		getLS:     func(b []byte, r int) int { return int(binary.LittleEndian.Uint32(b[2+8*(r/4)+4:]) >> 28) },
		setLS: func(b []byte, r, ls int) {
			o := 2 + 8*(r/4) + 4
			binary.LittleEndian.PutUint32(b[o:], binary.LittleEndian.Uint32(b[o:])&0x0fffffff|uint32(ls)<<28)
		},
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
		scaleRuns: 2,
		getLS:     func(b []byte, r int) int { return nibble(b[66+r/4], r%4/2) },
		setLS:     func(b []byte, r, ls int) { setNibble(&b[66+r/4], r%4/2, ls) },
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
		scaleRuns: 2,
		getLS:     func(b []byte, r int) int { return nibble(b[74+r/4], r%4/2) },
		setLS:     func(b []byte, r, ls int) { setNibble(&b[74+r/4], r%4/2, ls) },
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
		scaleRuns: 4,
		getLS:     func(b []byte, r int) int { return int(binary.LittleEndian.Uint32(b[66+4*(r/4):]) >> 28) },
		setLS: func(b []byte, r, ls int) {
			o := 66 + 4*(r/4)
			binary.LittleEndian.PutUint32(b[o:], binary.LittleEndian.Uint32(b[o:])&0x0fffffff|uint32(ls)<<28)
		},
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
		scaleRuns: 4,
		getLS:     func(b []byte, r int) int { return nibble(b[106+r/8], r/4%2) },
		setLS:     func(b []byte, r, ls int) { setNibble(&b[106+r/8], r/4%2, ls) },
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

func nibble(b byte, hi int) int { return int(b>>(4*uint(hi))) & 0xf }

func setNibble(b *byte, hi, v int) {
	sh := 4 * uint(hi)
	*b = *b&^(0xf<<sh) | byte(v&0xf)<<sh
}

// LatticeSupported reports whether LatticeBlock handles type dt.
func LatticeSupported(dt tensor.DType) bool { return latticeFormats[dt] != nil }

// LatticeBlock is one encoded block of a lattice type with its scales
// fixed. The zero value is unusable; call Reset.
type LatticeBlock struct {
	dt  tensor.DType
	f   *latticeFormat
	db  [32]float32 // each run's scale
	neg [32]bool    // IQ1: each run's stored shift sign
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
		if f.iq1 {
			lb.neg[r] = f.getShift(blk, r)
		}
	}
	return nil
}

// DType is the block's type.
func (lb *LatticeBlock) DType() tensor.DType { return lb.dt }

// Runs is the number of runs of 8 in a block (32).
func (lb *LatticeBlock) Runs() int { return lb.f.elems / LatticeRun }

// Scale is run r's scale db.
func (lb *LatticeBlock) Scale(r int) float32 { return lb.db[r] }

// ScaleRuns is the number of consecutive runs that share one sub-block
// scale (2 for IQ2_XS and IQ2_S, 4 for the others).
func (lb *LatticeBlock) ScaleRuns() int { return lb.f.scaleRuns }

// ScaleLevels is the number of settings of a sub-block scale: 16 (4 bits),
// or 8 for IQ1_S and IQ1_M (3 bits).
func (lb *LatticeBlock) ScaleLevels() int {
	if lb.f.scaleLevels == 0 {
		return 16
	}
	return lb.f.scaleLevels
}

// ShiftPerGroup reports whether the runs sharing a sub-block scale share
// one stored shift sign too (IQ1_S), which is then set with SetShift and
// not by a run's code.
func (lb *LatticeBlock) ShiftPerGroup() bool { return lb.f.iq1 && !lb.f.runShift }

// Shift reports whether run r's stored shift is −IQ1_DELTA (IQ1 types; for
// the others false).
func (lb *LatticeBlock) Shift(r int) bool { return lb.neg[r] }

// SetShift writes the shift sign of run r's group into blk (IQ1_S; a type
// without a group shift is left as it is).
func (lb *LatticeBlock) SetShift(blk []byte, r int, neg bool) {
	f := lb.f
	if !lb.ShiftPerGroup() {
		return
	}
	f.setShift(blk, r, neg)
	r0 := r / f.scaleRuns * f.scaleRuns
	for q := r0; q < r0+f.scaleRuns; q++ {
		lb.neg[q] = neg
	}
}

// ScaleIndex reads the sub-block scale ls (4 bits, 3 for IQ1) of run r from blk.
func (lb *LatticeBlock) ScaleIndex(blk []byte, r int) int { return lb.f.getLS(blk, r) }

// SetScaleIndex writes ls (0..ScaleLevels()−1) as the sub-block scale of run r (and of
// the runs sharing it) into blk and updates their scales in lb.
func (lb *LatticeBlock) SetScaleIndex(blk []byte, r, ls int) {
	f := lb.f
	f.setLS(blk, r, ls)
	r0 := r / f.scaleRuns * f.scaleRuns
	for q := r0; q < r0+f.scaleRuns; q++ {
		lb.db[q] = f.scale(blk, q)
	}
}

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
	if f.iq1 {
		neg := c.Shift
		if !f.runShift {
			neg = lb.neg[r]
		}
		iq1ValuesOf(db, c.Index[0], neg, v)
		return
	}
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
// with its best signs under the parity rule; for IQ1_M with each shift,
// for IQ1_S with its group's), keeps the cand cheapest
// (1 ≤ cand ≤ 16), and among them returns the one of least
// (x−v)ᵀ·m·(x−v), m the 8×8 row-major metric (nil: the weighted error).
// The run's values under the returned code are written into v.
func (lb *LatticeBlock) Nearest(r int, x, w []float32, m []float64, cand int, v []float32) RunCode {
	cand = max(1, min(cand, latticeMaxCand))
	var best topK
	if lb.f.iq1 {
		lb.nearestIQ1(r, x, w, cand, &best)
	} else {
		lb.nearestSigned(r, x, w, cand, &best)
	}
	if best.n == 0 {
		// every cost was NaN or infinite (non-finite x or w)
		c := RunCode{Shift: lb.neg[r]}
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
			if q := quadForm(m, &e); q < bq {
				bq, bc = q, cd.c
			}
		}
	}
	lb.Values(r, bc, v)
	return bc
}

// nearestSigned adds to best the cand cheapest codes of run r of a type
// with signed magnitudes (the IQ2 and IQ3 types).
func (lb *LatticeBlock) nearestSigned(r int, x, w []float32, cand int, best *topK) {
	f := lb.f
	db := lb.db[r]
	// Every magnitude is positive, so the better sign of element j is
	// the same for all of them: '−' where x_j and db differ in sign. Per
	// element and magnitude (flattened, j·len(mags) + magnitude): the
	// weighted error with the better sign, and the extra error of the
	// other sign.
	nm := len(f.mags)
	var base, pen [LatticeRun * latticeMaxMags]float64
	var signs uint8
	for j := 0; j < LatticeRun; j++ {
		xj, wj := float64(x[j]), float64(w[j])
		if xj*float64(db) < 0 {
			signs |= 1 << uint(j)
		}
		for li, mg := range f.mags {
			a := math.Abs(float64(db * float32(mg)))
			d := math.Abs(xj) - a
			base[j*nm+li] = wj * d * d
			pen[j*nm+li] = 4 * wj * math.Abs(xj) * a
		}
	}
	odd := f.parity && oddBits(signs)
	if f.dim == 8 {
		thresh := math.Inf(1)
		for k := range f.offs {
			o := &f.offs[k]
			cost := base[o[0]] + base[o[1]] + base[o[2]] + base[o[3]] +
				base[o[4]] + base[o[5]] + base[o[6]] + base[o[7]]
			if cost >= thresh {
				continue // the parity penalty only adds
			}
			sg := signs
			if odd {
				mp, mj := pen[o[0]], 0
				for j := 1; j < LatticeRun; j++ {
					if p := pen[o[j]]; p < mp {
						mp, mj = p, j
					}
				}
				cost += mp
				sg ^= 1 << uint(mj)
			}
			best.add(cand, RunCode{Index: [2]uint16{uint16(k)}, Signs: sg}, cost)
			if best.n == cand {
				thresh = best.c[cand-1].cost
			}
		}
	} else {
		// Two halves of 4: each half's cheapest points with the better
		// signs and its cheapest with one sign flipped; then every pair
		// of those whose signs meet the parity rule.
		type half struct {
			top  topK
			flip latticeCand // cheapest error + flip penalty, flipped
		}
		var hs [2]half
		hk := min(cand, 6)
		for h := 0; h < 2; h++ {
			hs[h].flip.cost = math.Inf(1)
			hsg := signs & (0xf << uint(4*h))
			for k := range f.offs {
				o := f.offs[k][4*h : 4*h+4]
				cost := base[o[0]] + base[o[1]] + base[o[2]] + base[o[3]]
				c := RunCode{Signs: hsg}
				c.Index[h] = uint16(k)
				hs[h].top.add(hk, c, cost)
				if !f.parity || cost >= hs[h].flip.cost {
					continue
				}
				mp, mj := pen[o[0]], 0
				for j := 1; j < 4; j++ {
					if p := pen[o[j]]; p < mp {
						mp, mj = p, j
					}
				}
				if cost+mp < hs[h].flip.cost {
					c.Signs ^= 1 << uint(4*h+mj)
					hs[h].flip = latticeCand{c, cost + mp}
				}
			}
		}
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
