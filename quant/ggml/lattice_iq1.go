package ggml

import (
	"encoding/binary"
	"math"
	"sync"

	"github.com/terse-llm/terse/tensor"
)

// IQ1 lattice blocks
//
// IQ1_S and IQ1_M code each run of 8 elements as one point of the
// 2048-entry iq1 grid (values −1, 0, +1) plus a shift δ = ±IQ1_DELTA, all
// times the run's scale db: element j is db·(grid value j + δ), computed
// in float32 as the dequantizer computes it. Their runs are driven by the
// same LatticeBlock as the other lattice types, with these differences:
//
//   - RunCode.Index[0] is the 11-bit grid index; Signs is unused (zero).
//   - IQ1_M stores a shift sign per run: RunCode.Shift is part of the
//     run's code, and Nearest chooses it.
//   - IQ1_S stores one shift sign per group of 32 (the 4 runs sharing a
//     scale): it belongs to the block like the scale (LatticeBlock.Shift,
//     SetShift; ShiftPerGroup reports it), Nearest keeps it, Encode
//     ignores RunCode.Shift and Values uses the group's sign.
//   - Their sub-block scales have 3 bits (ScaleLevels is 8).

// iq1Trits are, for every grid point, the base-3 codes (value+1, first
// element most significant) of its elements 0..3 and 4..7.
var (
	iq1TritsOnce sync.Once
	iq1Trits     [2048][2]uint8
)

func iq1TritTable() *[2048][2]uint8 {
	iq1TritsOnce.Do(func() {
		for k := range iq1sGrid {
			for h := 0; h < 2; h++ {
				var t uint8
				for j := 0; j < 4; j++ {
					t = 3*t + uint8(iq1Value(k, 4*h+j)+1)
				}
				iq1Trits[k][h] = t
			}
		}
	})
	return &iq1Trits
}

func init() {
	latticeFormats[tensor.IQ1_S] = &latticeFormat{
		elems: iq1sElems, bytes: iq1sBytes, dim: 8, grid: iq1sGrid[:],
		iq1: true, scaleRuns: 4, scaleLevels: 8,
		getLS: func(b []byte, r int) int { return int(binary.LittleEndian.Uint16(b[34+2*(r/4):]) >> 12 & 7) },
		setLS: func(b []byte, r, ls int) {
			o := 34 + 2*(r/4)
			qh := binary.LittleEndian.Uint16(b[o:])
			binary.LittleEndian.PutUint16(b[o:], qh&^(7<<12)|uint16(ls&7)<<12)
		},
		getShift: func(b []byte, r int) bool { return binary.LittleEndian.Uint16(b[34+2*(r/4):])&0x8000 != 0 },
		setShift: func(b []byte, r int, neg bool) {
			o := 34 + 2*(r/4)
			qh := binary.LittleEndian.Uint16(b[o:]) &^ 0x8000
			if neg {
				qh |= 0x8000
			}
			binary.LittleEndian.PutUint16(b[o:], qh)
		},
		scale: func(b []byte, r int) float32 {
			qh := binary.LittleEndian.Uint16(b[34+2*(r/4):])
			return f16(b) * float32(2*int32(qh>>12&7)+1)
		},
		read: func(b []byte, r int) RunCode {
			g, l := r/4, r%4
			qh := binary.LittleEndian.Uint16(b[34+2*g:])
			return RunCode{Index: [2]uint16{uint16(b[2+4*g+l]) | (qh>>(3*uint(l))&7)<<8}, Shift: qh&0x8000 != 0}
		},
		write: func(b []byte, r int, c RunCode) {
			g, l := r/4, uint(r%4)
			b[2+4*g+int(l)] = byte(c.Index[0])
			o := 34 + 2*g
			qh := binary.LittleEndian.Uint16(b[o:])
			qh = qh&^(7<<(3*l)) | (c.Index[0]>>8&7)<<(3*l)
			binary.LittleEndian.PutUint16(b[o:], qh)
		},
	}
	latticeFormats[tensor.IQ1_M] = &latticeFormat{
		elems: iq1mElems, bytes: iq1mBytes, dim: 8, grid: iq1sGrid[:],
		iq1: true, runShift: true, scaleRuns: 2, scaleLevels: 8,
		getLS: func(b []byte, r int) int {
			g, h := r/4, r%4/2
			return int(binary.LittleEndian.Uint16(b[48+2*(g/2):]) >> (6*uint(g%2) + 3*uint(h)) & 7)
		},
		setLS: func(b []byte, r, ls int) {
			g, h := r/4, r%4/2
			o, sh := 48+2*(g/2), 6*uint(g%2)+3*uint(h)
			s := binary.LittleEndian.Uint16(b[o:])
			binary.LittleEndian.PutUint16(b[o:], s&^(7<<sh)|uint16(ls&7)<<sh)
		},
		getShift: func(b []byte, r int) bool { _, neg := iq1mRun(b, r/4, r%4); return neg },
		scale: func(b []byte, r int) float32 {
			sc, d := iq1mScales(b)
			return d * float32(iq1mHalfScale(&sc, r/4, r%4/2))
		},
		read: func(b []byte, r int) RunCode {
			idx, neg := iq1mRun(b, r/4, r%4)
			return RunCode{Index: [2]uint16{uint16(idx)}, Shift: neg}
		},
		write: func(b []byte, r int, c RunCode) {
			g, l := r/4, r%4
			b[4*g+l] = byte(c.Index[0])
			hi := byte(c.Index[0]>>8&7) | byte(b2i(c.Shift))<<3
			q := &b[32+2*g+l/2]
			if l%2 == 0 {
				*q = *q&0xf0 | hi
			} else {
				*q = *q&0x0f | hi<<4
			}
		},
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// iq1ValuesOf writes db·(grid value j + δ) of grid point idx into v.
func iq1ValuesOf(db float32, idx uint16, neg bool, v []float32) {
	delta := float32(iq1Delta)
	if neg {
		delta = -iq1Delta
	}
	g := iq1sGrid[idx]
	for j := 0; j < LatticeRun; j++ {
		v[j] = db * (float32(int32(int8(gridByte(g, j)))) + delta)
	}
}

// nearestIQ1 adds to best the cand codes of run r of least weighted error
// Σ w_j·(x_j − v_j)², over every grid point and, for IQ1_M, both shift
// signs (IQ1_S: the group's). The error of a point is the sum of two
// tables over the 81 settings of each half of the run.
func (lb *LatticeBlock) nearestIQ1(r int, x, w []float32, cand int, best *topK) {
	tr := iq1TritTable()
	db := lb.db[r]
	shifts := []bool{false, true}
	if !lb.f.runShift {
		shifts = shifts[:0]
		shifts = append(shifts, lb.neg[r])
	}
	thresh := math.Inf(1)
	for _, neg := range shifts {
		delta := float32(iq1Delta)
		if neg {
			delta = -iq1Delta
		}
		// e[j][t]: the weighted error of element j at value t−1
		var e [LatticeRun][3]float64
		for j := 0; j < LatticeRun; j++ {
			for t := 0; t < 3; t++ {
				d := float64(x[j]) - float64(db*(float32(int32(t-1))+delta))
				e[j][t] = float64(w[j]) * d * d
			}
		}
		var half [2][81]float64
		for h := 0; h < 2; h++ {
			for a := 0; a < 81; a++ {
				half[h][a] = e[4*h][a/27] + e[4*h+1][a/9%3] + e[4*h+2][a/3%3] + e[4*h+3][a%3]
			}
		}
		for k := range tr {
			p := &tr[k]
			cost := half[0][p[0]] + half[1][p[1]]
			if cost >= thresh {
				continue
			}
			best.add(cand, RunCode{Index: [2]uint16{uint16(k)}, Shift: neg}, cost)
			if best.n == cand {
				thresh = best.c[cand-1].cost
			}
		}
	}
}
