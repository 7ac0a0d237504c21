package ggml

import (
	"fmt"
	"math"

	"github.com/terse-llm/terse/tensor"
)

// Block grids
//
// A BlockGrid is the set of values one encoded block can represent once its
// scales (and mins) are fixed: for every element, the values the
// dequantizer produces as the element's code bits run over all their
// settings. It lets an outer algorithm (GPTQ) keep the scales llama.cpp's
// own search chose for a block and pick each element's code itself.
//
// Codes are the element's stored bit field read as an unsigned integer (the
// nibble, the 2+1 bits of Q3_K with the hmask bit as bit 2, the 6 bits of
// Q6_K), except for Q8_0, whose stored int8 q has code q+128. Every type's
// value is then monotonic in the code within a sub-block (non-decreasing
// for a non-negative scale, non-increasing for a negative one):
//
//	Q8_0           d·(code−128)            code 0..255
//	Q4_0, Q5_0     d·(code−8), d·(code−16) code 0..15, 0..31
//	Q4_1, Q5_1     d·code + m              code 0..15, 0..31
//	Q2_K           dl_s·code − ml_s        code 0..3,  s = i/16
//	Q3_K           dl_s·(code−4)           code 0..7,  s = i/16
//	Q4_K, Q5_K     d1_s·code − m1_s        code 0..15, 0..31, s = i/32
//	Q6_K           (d·sc_s)·(code−32)      code 0..63, s = i/16
//	IQ4_NL         d·kvalues[code]         code 0..15
//	IQ4_XS         dl_g·kvalues[code]      code 0..15, g = i/32
//	TQ1_0, TQ2_0   d·(code−1)              code 0..2
//
// each computed in float32 exactly as the dequantizer computes it, so
// Value(i, code) is bit for bit what Dequantize yields for a block holding
// that code at element i.

// gridKind is how a grid's values follow from the code.
type gridKind uint8

const (
	gridSym    gridKind = iota // float32(code−off) · s
	gridAffine                 // float32(float32(code)·s) + m
	gridTable                  // s · float32(table[code])
)

// BlockGrid holds the representable values of one block of a ggml block
// type under the block's stored scales. The zero value is unusable; make
// one with NewBlockGrid or Reset. A BlockGrid does not keep the block's
// bytes and does not allocate after construction.
type BlockGrid struct {
	dt     tensor.DType
	t      *Type
	kind   gridKind
	shift  uint      // log2 of the elements per sub-block
	n      int       // elements per block
	levels int       // codes per element
	off    int32     // gridSym: the code of level zero
	table  *[16]int8 // gridTable: the value of each code
	s, m   [16]float32
}

// NewBlockGrid returns the grid of the encoded block blk of type dt (exactly
// dt.BlockBytes() bytes). Supported types: those whose descriptor has a
// grid (GridSupported): every registered block type of one code per
// element, Q8_0 through IQ4_XS, and the ternary TQ1_0 and TQ2_0.
func NewBlockGrid(dt tensor.DType, blk []byte) (*BlockGrid, error) {
	g := new(BlockGrid)
	if err := g.Reset(dt, blk); err != nil {
		return nil, err
	}
	return g, nil
}

// GridSupported reports whether NewBlockGrid handles type dt.
func GridSupported(dt tensor.DType) bool {
	t := lookup(dt)
	return t != nil && t.grid != nil
}

// Reset makes g the grid of the encoded block blk of type dt, as
// NewBlockGrid does, without allocating.
func (g *BlockGrid) Reset(dt tensor.DType, blk []byte) error {
	t := lookup(dt)
	if t == nil || t.grid == nil {
		return fmt.Errorf("block grid: type %s is not supported", dt)
	}
	if len(blk) != t.BlockBytes {
		return fmt.Errorf("block grid: %s block has %d bytes, want %d", dt, len(blk), t.BlockBytes)
	}
	*g = BlockGrid{dt: dt, t: t, n: t.BlockSize}
	t.grid.reset(g, blk)
	return nil
}

// DType is the block type of the grid.
func (g *BlockGrid) DType() tensor.DType { return g.dt }

// Len is the number of elements in a block (32 or 256).
func (g *BlockGrid) Len() int { return g.n }

// Levels is the number of codes per element: 2^bits (256 for Q8_0).
func (g *BlockGrid) Levels() int { return g.levels }

// Value returns the value of element i (0..Len()-1) when it holds code
// (0..Levels()-1): bit for bit what Dequantize gives for it.
func (g *BlockGrid) Value(i, code int) float32 {
	return g.value(i>>g.shift, code)
}

func (g *BlockGrid) value(s, code int) float32 {
	switch g.kind {
	case gridSym:
		return float32(int32(code)-g.off) * g.s[s]
	case gridAffine:
		return float32(float32(code)*g.s[s]) + g.m[s]
	default:
		return g.s[s] * float32(g.table[code])
	}
}

// Nearest returns the code of element i whose value is nearest x, and that
// value. Ties go to the lower value; when several codes give the same value
// (a zero scale) any of them may be returned.
func (g *BlockGrid) Nearest(i int, x float32) (code int, v float32) {
	s := i >> g.shift
	lo, hi := 0, g.levels-1
	vlo, vhi := g.value(s, lo), g.value(s, hi)
	asc := vlo <= vhi
	if asc {
		if x <= vlo {
			return lo, vlo
		}
		if x >= vhi {
			return hi, vhi
		}
	} else {
		if x >= vlo {
			return lo, vlo
		}
		if x <= vhi {
			return hi, vhi
		}
	}
	// Invariant: value(lo) is on the lower side of x (in the grid's
	// direction), value(hi) strictly beyond it.
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		v := g.value(s, mid)
		if (asc && v <= x) || (!asc && v >= x) {
			lo, vlo = mid, v
		} else {
			hi, vhi = mid, v
		}
	}
	dlo := math.Abs(float64(x) - float64(vlo))
	dhi := math.Abs(float64(vhi) - float64(x))
	if dhi < dlo || (dhi == dlo && vhi < vlo) {
		return hi, vhi
	}
	return lo, vlo
}

// Codes reads the code of every element of the encoded block blk (of the
// grid's type) into codes (Len() of them).
func (g *BlockGrid) Codes(blk []byte, codes []int) {
	g.t.grid.codes(blk, codes[:g.n])
}

// Encode writes codes (Len() of them, each in 0..Levels()-1) into the
// encoded block blk of the grid's type, replacing only the code bits: the
// scales, mins and super-block scales stay as they are, so Dequantize of
// blk then yields Value(i, codes[i]) for every element i.
func (g *BlockGrid) Encode(codes []int, blk []byte) {
	g.t.grid.encode(codes[:g.n], blk)
}
