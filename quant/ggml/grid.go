package ggml

import (
	"encoding/binary"
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
//
// each computed in float32 exactly as the dequantizer computes it, so
// Value(i, code) is bit for bit what Dequantize yields for a block holding
// that code at element i.

// gridKind is how a grid's values follow from the code.
type gridKind uint8

const (
	gridSym    gridKind = iota // float32(code−off) · s
	gridAffine                 // float32(float32(code)·s) + m
	gridTable                  // s · float32(iq4nlValues[code])
)

// BlockGrid holds the representable values of one block of a ggml block
// type under the block's stored scales. The zero value is unusable; make
// one with NewBlockGrid or Reset. A BlockGrid does not keep the block's
// bytes and does not allocate after construction.
type BlockGrid struct {
	dt     tensor.DType
	kind   gridKind
	shift  uint  // log2 of the elements per sub-block
	n      int   // elements per block
	levels int   // codes per element
	off    int32 // gridSym: the code of level zero
	s, m   [16]float32
}

// NewBlockGrid returns the grid of the encoded block blk of type dt (exactly
// dt.BlockBytes() bytes). Supported types: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS.
func NewBlockGrid(dt tensor.DType, blk []byte) (*BlockGrid, error) {
	g := new(BlockGrid)
	if err := g.Reset(dt, blk); err != nil {
		return nil, err
	}
	return g, nil
}

// GridSupported reports whether NewBlockGrid handles type dt.
func GridSupported(dt tensor.DType) bool {
	switch dt {
	case tensor.Q8_0, tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1,
		tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K,
		tensor.IQ4_NL, tensor.IQ4_XS:
		return true
	}
	return false
}

// Reset makes g the grid of the encoded block blk of type dt, as
// NewBlockGrid does, without allocating.
func (g *BlockGrid) Reset(dt tensor.DType, blk []byte) error {
	if !GridSupported(dt) {
		return fmt.Errorf("block grid: type %s is not supported", dt)
	}
	if len(blk) != dt.BlockBytes() {
		return fmt.Errorf("block grid: %s block has %d bytes, want %d", dt, len(blk), dt.BlockBytes())
	}
	*g = BlockGrid{dt: dt, n: dt.BlockSize()}
	switch dt {
	case tensor.Q8_0:
		g.kind, g.shift, g.levels, g.off = gridSym, 5, 256, 128
		g.s[0] = f16(blk)
	case tensor.Q4_0:
		g.kind, g.shift, g.levels, g.off = gridSym, 5, 16, 8
		g.s[0] = f16(blk)
	case tensor.Q5_0:
		g.kind, g.shift, g.levels, g.off = gridSym, 5, 32, 16
		g.s[0] = f16(blk)
	case tensor.Q4_1:
		g.kind, g.shift, g.levels = gridAffine, 5, 16
		g.s[0], g.m[0] = f16(blk), f16(blk[2:])
	case tensor.Q5_1:
		g.kind, g.shift, g.levels = gridAffine, 5, 32
		g.s[0], g.m[0] = f16(blk), f16(blk[2:])
	case tensor.Q2_K:
		g.kind, g.shift, g.levels = gridAffine, 4, 4
		d, dmin := f16(blk[80:]), f16(blk[82:])
		for j := 0; j < 16; j++ {
			sc := blk[j]
			g.s[j] = d * float32(sc&0x0f)
			// x − ml is x + (−ml) bit for bit, signed zeros included.
			g.m[j] = -(dmin * float32(sc>>4))
		}
	case tensor.Q3_K:
		g.kind, g.shift, g.levels, g.off = gridSym, 4, 8, 4
		d := f16(blk[108:])
		for j := 0; j < 16; j++ {
			g.s[j] = d * float32(q3KScale(j, blk[96:108]))
		}
	case tensor.Q4_K, tensor.Q5_K:
		g.kind, g.shift, g.levels = gridAffine, 5, 16
		if dt == tensor.Q5_K {
			g.levels = 32
		}
		d, dmin := f16(blk), f16(blk[2:])
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, blk[4:16])
			g.s[j] = d * float32(sc)
			g.m[j] = -(dmin * float32(m))
		}
	case tensor.Q6_K:
		g.kind, g.shift, g.levels, g.off = gridSym, 4, 64, 32
		d := f16(blk[208:])
		for j := 0; j < 16; j++ {
			g.s[j] = d * float32(int8(blk[192+j]))
		}
	case tensor.IQ4_NL:
		g.kind, g.shift, g.levels = gridTable, 5, 16
		g.s[0] = f16(blk)
	case tensor.IQ4_XS:
		g.kind, g.shift, g.levels = gridTable, 5, 16
		d := f16(blk)
		sh := uint16(blk[2]) | uint16(blk[3])<<8
		for j := 0; j < 8; j++ {
			ls := int32(blk[4+j/2]>>(4*uint(j%2)))&0x0f | int32(sh>>(2*uint(j))&3)<<4
			g.s[j] = d * float32(ls-32)
		}
	}
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
		return g.s[s] * float32(iq4nlValues[code])
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
	codes = codes[:g.n]
	switch g.dt {
	case tensor.Q8_0:
		for i := range codes {
			codes[i] = int(int8(blk[2+i])) + 128
		}
	case tensor.Q4_0, tensor.IQ4_NL:
		getNibbles32(blk[2:18], codes)
	case tensor.Q4_1:
		getNibbles32(blk[4:20], codes)
	case tensor.Q5_0, tensor.Q5_1:
		qh, qs := q5Fields(g.dt, blk)
		getNibbles32(qs, codes)
		h := binary.LittleEndian.Uint32(qh)
		for i := range codes {
			codes[i] |= int(h>>uint(i)&1) << 4
		}
	case tensor.Q2_K:
		get2Bits(blk[16:80], codes)
	case tensor.Q3_K:
		get2Bits(blk[32:96], codes)
		hmask := blk[0:32]
		for i := range codes {
			codes[i] |= int(hmask[i%32]>>uint(i/32)&1) << 2
		}
	case tensor.Q4_K:
		getNibblesK(blk[16:144], codes)
	case tensor.Q5_K:
		getNibblesK(blk[48:176], codes)
		qh := blk[16:48]
		for i := range codes {
			codes[i] |= int(qh[i%32]>>uint(i/32)&1) << 4
		}
	case tensor.Q6_K:
		for i := range codes {
			lb, ls, hb, hs := q6KLoc(i)
			codes[i] = int(blk[lb]>>ls&0x0f) | int(blk[hb]>>hs&3)<<4
		}
	case tensor.IQ4_XS:
		for j := 0; j < 8; j++ {
			getNibbles32(blk[8+16*j:24+16*j], codes[32*j:32*j+32])
		}
	}
}

// Encode writes codes (Len() of them, each in 0..Levels()-1) into the
// encoded block blk of the grid's type, replacing only the code bits: the
// scales, mins and super-block scales stay as they are, so Dequantize of
// blk then yields Value(i, codes[i]) for every element i.
func (g *BlockGrid) Encode(codes []int, blk []byte) {
	codes = codes[:g.n]
	switch g.dt {
	case tensor.Q8_0:
		for i, c := range codes {
			blk[2+i] = byte(int8(c - 128))
		}
	case tensor.Q4_0, tensor.IQ4_NL:
		putNibbles32(codes, blk[2:18])
	case tensor.Q4_1:
		putNibbles32(codes, blk[4:20])
	case tensor.Q5_0, tensor.Q5_1:
		qh, qs := q5Fields(g.dt, blk)
		putNibbles32(codes, qs)
		var h uint32
		for i, c := range codes {
			h |= uint32(c>>4&1) << uint(i)
		}
		binary.LittleEndian.PutUint32(qh, h)
	case tensor.Q2_K:
		put2Bits(codes, blk[16:80])
	case tensor.Q3_K:
		put2Bits(codes, blk[32:96])
		hmask := blk[0:32]
		clear(hmask)
		for i, c := range codes {
			hmask[i%32] |= byte(c>>2&1) << uint(i/32)
		}
	case tensor.Q4_K:
		putNibblesK(codes, blk[16:144])
	case tensor.Q5_K:
		putNibblesK(codes, blk[48:176])
		qh := blk[16:48]
		clear(qh)
		for i, c := range codes {
			qh[i%32] |= byte(c>>4&1) << uint(i/32)
		}
	case tensor.Q6_K:
		clear(blk[0:192])
		for i, c := range codes {
			lb, ls, hb, hs := q6KLoc(i)
			blk[lb] |= byte(c&0x0f) << ls
			blk[hb] |= byte(c>>4&3) << hs
		}
	case tensor.IQ4_XS:
		for j := 0; j < 8; j++ {
			putNibbles32(codes[32*j:32*j+32], blk[8+16*j:24+16*j])
		}
	}
}

// q5Fields returns the qh and qs fields of a Q5_0 or Q5_1 block.
func q5Fields(dt tensor.DType, blk []byte) (qh, qs []byte) {
	if dt == tensor.Q5_0 {
		return blk[2:6], blk[6:22]
	}
	return blk[4:8], blk[8:24]
}

// getNibbles32 reads 32 nibbles packed as in Q4_0: byte j holds elements
// j (low) and j+16 (high).
func getNibbles32(qs []byte, codes []int) {
	for j := 0; j < 16; j++ {
		codes[j] = int(qs[j] & 0x0f)
		codes[j+16] = int(qs[j] >> 4)
	}
}

// putNibbles32 is the inverse of getNibbles32 (codes masked to 4 bits).
func putNibbles32(codes []int, qs []byte) {
	for j := 0; j < 16; j++ {
		qs[j] = byte(codes[j]&0x0f) | byte(codes[j+16]&0x0f)<<4
	}
}

// getNibblesK reads the 256 low nibbles of Q4_K/Q5_K: chunk c of 64
// elements reads bytes 32c..32c+31, low nibbles first.
func getNibblesK(qs []byte, codes []int) {
	for c := 0; c < 4; c++ {
		for l := 0; l < 32; l++ {
			b := qs[32*c+l]
			codes[64*c+l] = int(b & 0x0f)
			codes[64*c+32+l] = int(b >> 4)
		}
	}
}

// putNibblesK is the inverse of getNibblesK (codes masked to 4 bits).
func putNibblesK(codes []int, qs []byte) {
	for c := 0; c < 4; c++ {
		for l := 0; l < 32; l++ {
			qs[32*c+l] = byte(codes[64*c+l]&0x0f) | byte(codes[64*c+32+l]&0x0f)<<4
		}
	}
}

// get2Bits reads the 256 2-bit fields of Q2_K/Q3_K (see packQ2Bits).
func get2Bits(qs []byte, codes []int) {
	for j := 0; j < qkK; j += 128 {
		for l := 0; l < 32; l++ {
			b := qs[j/4+l]
			codes[j+l] = int(b & 3)
			codes[j+l+32] = int(b >> 2 & 3)
			codes[j+l+64] = int(b >> 4 & 3)
			codes[j+l+96] = int(b >> 6 & 3)
		}
	}
}

// put2Bits is the inverse of get2Bits (codes masked to 2 bits).
func put2Bits(codes []int, qs []byte) {
	for j := 0; j < qkK; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = byte(codes[j+l]&3) | byte(codes[j+l+32]&3)<<2 |
				byte(codes[j+l+64]&3)<<4 | byte(codes[j+l+96]&3)<<6
		}
	}
}

// q6KLoc locates element i of a Q6_K block: its low nibble is at bit ls of
// byte lb (in ql), its high two bits at bit hs of byte hb (in qh).
func q6KLoc(i int) (lb int, ls uint, hb int, hs uint) {
	h, r := i/128, i%128
	k, l := r/32, r%32
	lb = 64*h + l + 32*(k&1)
	ls = 4 * uint(k/2)
	hb = 128 + 32*h + l
	hs = 2 * uint(k)
	return
}
