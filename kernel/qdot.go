package kernel

import (
	"encoding/binary"

	"github.com/terse-llm/terse/tensor"
)

// Integer dot products of one quantized weight row with one quantized
// activation row (q8Act), the way ggml's ggml_vec_dot_<type>_q8_<0|K> does
// them: per block, an exact int32 sum of weight quant × activation quant,
// scaled by the two blocks' float32 scales and accumulated in float32.
//
// The generic versions here are the reference; the SIMD versions
// (qdot_amd64.s) compute the same integer block sums and differ only in how
// the float32 scaling and accumulation are ordered.

// qdotFn returns row · activation for a weight row w of len(a.q) elements.
type qdotFn func(w []byte, a *q8Act) float32

// qrowsFn sets out[i] = (row i of w) · a for the len(out) rows of rb bytes
// each at the start of w (len(w) >= len(out)·rb).
type qrowsFn func(out []float32, w []byte, rb int, a *q8Act)

// qType describes a weight type the integer path handles.
type qType struct {
	act     actFormat
	generic qdotFn
}

// qTypeOf returns the integer-path description of dt, if it has one.
func qTypeOf(dt tensor.DType) (qType, bool) {
	switch dt {
	case tensor.Q8_0:
		return qType{actQ8_0, dotQ8_0Generic}, true
	case tensor.Q4_0:
		return qType{actQ8_0, dotQ4_0Generic}, true
	case tensor.Q4_1:
		return qType{actQ8_0, dotQ4_1Generic}, true
	case tensor.Q5_0:
		return qType{actQ8_0, dotQ5_0Generic}, true
	case tensor.IQ4_NL:
		return qType{actQ8_0, dotIQ4NLGeneric}, true
	case tensor.Q4_K:
		return qType{actQ8_K, dotQ4KGeneric}, true
	case tensor.Q5_K:
		return qType{actQ8_K, dotQ5KGeneric}, true
	case tensor.Q6_K:
		return qType{actQ8_K, dotQ6KGeneric}, true
	case tensor.IQ4_XS:
		return qType{actQ8_K, dotIQ4XSGeneric}, true
	}
	return qType{}, false
}

func dotQ8_0Generic(w []byte, a *q8Act) float32 {
	var sum float32
	for b, dy := range a.d {
		blk := w[b*34 : b*34+34]
		q := a.q[b*32 : b*32+32]
		var s int32
		for i, v := range blk[2:34] {
			s += int32(int8(v)) * int32(q[i])
		}
		sum += float32(s) * (f16(blk) * dy)
	}
	return sum
}

func dotQ4_0Generic(w []byte, a *q8Act) float32 {
	var sum float32
	for b, dy := range a.d {
		blk := w[b*18 : b*18+18]
		q := a.q[b*32 : b*32+32]
		var s int32
		for j, v := range blk[2:18] {
			s += (int32(v&15)-8)*int32(q[j]) + (int32(v>>4)-8)*int32(q[j+16])
		}
		sum += float32(s) * (f16(blk) * dy)
	}
	return sum
}

func dotQ4_1Generic(w []byte, a *q8Act) float32 {
	var sum float32
	for b, dy := range a.d {
		blk := w[b*20 : b*20+20]
		q := a.q[b*32 : b*32+32]
		var s int32
		for j, v := range blk[4:20] {
			s += int32(v&15)*int32(q[j]) + int32(v>>4)*int32(q[j+16])
		}
		sum += float32(s)*(f16(blk)*dy) + f16(blk[2:])*a.s[b]
	}
	return sum
}

func dotQ5_0Generic(w []byte, a *q8Act) float32 {
	var sum float32
	for b, dy := range a.d {
		blk := w[b*22 : b*22+22]
		q := a.q[b*32 : b*32+32]
		qh := binary.LittleEndian.Uint32(blk[2:6])
		var s int32
		for j, v := range blk[6:22] {
			lo := int32(v&15) | int32(qh>>uint(j)&1)<<4
			hi := int32(v>>4) | int32(qh>>uint(j+16)&1)<<4
			s += (lo-16)*int32(q[j]) + (hi-16)*int32(q[j+16])
		}
		sum += float32(s) * (f16(blk) * dy)
	}
	return sum
}

// iq4nl is ggml's kvalues_iq4nl codebook (as in quant/ggml).
var iq4nl = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

func dotIQ4NLGeneric(w []byte, a *q8Act) float32 {
	var sum float32
	for b, dy := range a.d {
		blk := w[b*18 : b*18+18]
		q := a.q[b*32 : b*32+32]
		var s int32
		for j, v := range blk[2:18] {
			s += int32(iq4nl[v&15])*int32(q[j]) + int32(iq4nl[v>>4])*int32(q[j+16])
		}
		sum += float32(s) * (f16(blk) * dy)
	}
	return sum
}

// scaleMinK4 unpacks the 6-bit scales and mins of a Q4_K/Q5_K block.
func scaleMinK4(p []byte) (sc, m [8]int32) {
	for j := 0; j < 4; j++ {
		sc[j] = int32(p[j] & 63)
		m[j] = int32(p[j+4] & 63)
		sc[j+4] = int32(p[j+8]&15 | (p[j]>>6)<<4)
		m[j+4] = int32(p[j+8]>>4 | (p[j+4]>>6)<<4)
	}
	return
}

// kMins returns Σ m[s]·(sum of activation sub-block s of 32) for one block.
func kMins(m *[8]int32, bs []int16) int32 {
	var t int32
	for s := range m {
		t += m[s] * (int32(bs[2*s]) + int32(bs[2*s+1]))
	}
	return t
}

func dotQ4KGeneric(w []byte, a *q8Act) float32 {
	var sum float32
	for b, dy := range a.d {
		blk := w[b*144 : b*144+144]
		q := a.q[b*256 : b*256+256]
		sc, m := scaleMinK4(blk[4:16])
		var sumi int32
		for c := 0; c < 4; c++ {
			qs := blk[16+32*c : 48+32*c]
			var s1, s2 int32
			for l, v := range qs {
				s1 += int32(v&15) * int32(q[64*c+l])
				s2 += int32(v>>4) * int32(q[64*c+32+l])
			}
			sumi += sc[2*c]*s1 + sc[2*c+1]*s2
		}
		summ := kMins(&m, a.bs[b*16:b*16+16])
		sum += dy*f16(blk)*float32(sumi) - dy*f16(blk[2:])*float32(summ)
	}
	return sum
}

func dotQ5KGeneric(w []byte, a *q8Act) float32 {
	var sum float32
	for b, dy := range a.d {
		blk := w[b*176 : b*176+176]
		q := a.q[b*256 : b*256+256]
		sc, m := scaleMinK4(blk[4:16])
		qh := blk[16:48]
		var sumi int32
		for c := 0; c < 4; c++ {
			qs := blk[48+32*c : 80+32*c]
			var s1, s2 int32
			for l, v := range qs {
				lo := int32(v&15) | int32(qh[l]>>uint(2*c)&1)<<4
				hi := int32(v>>4) | int32(qh[l]>>uint(2*c+1)&1)<<4
				s1 += lo * int32(q[64*c+l])
				s2 += hi * int32(q[64*c+32+l])
			}
			sumi += sc[2*c]*s1 + sc[2*c+1]*s2
		}
		summ := kMins(&m, a.bs[b*16:b*16+16])
		sum += dy*f16(blk)*float32(sumi) - dy*f16(blk[2:])*float32(summ)
	}
	return sum
}

func dotQ6KGeneric(w []byte, a *q8Act) float32 {
	var sum float32
	for b, dy := range a.d {
		blk := w[b*210 : b*210+210]
		q := a.q[b*256 : b*256+256]
		var sumi int32
		for h := 0; h < 2; h++ {
			ql := blk[64*h : 64*h+64]
			qh := blk[128+32*h : 160+32*h]
			sc := blk[192+8*h : 200+8*h]
			qq := q[128*h : 128*h+128]
			var is [8]int32
			for l := 0; l < 32; l++ {
				k := l / 16
				q1 := int32(ql[l]&15|(qh[l]&3)<<4) - 32
				q2 := int32(ql[l+32]&15|(qh[l]>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				is[k] += q1 * int32(qq[l])
				is[k+2] += q2 * int32(qq[l+32])
				is[k+4] += q3 * int32(qq[l+64])
				is[k+6] += q4 * int32(qq[l+96])
			}
			for k, v := range is {
				sumi += int32(int8(sc[k])) * v
			}
		}
		sum += dy * f16(blk[208:]) * float32(sumi)
	}
	return sum
}

func dotIQ4XSGeneric(w []byte, a *q8Act) float32 {
	var sum float32
	for b, dy := range a.d {
		blk := w[b*136 : b*136+136]
		q := a.q[b*256 : b*256+256]
		sh := uint16(blk[2]) | uint16(blk[3])<<8
		var sumi int32
		for g := 0; g < 8; g++ {
			ls := int32(blk[4+g/2]>>(4*uint(g%2)))&15 | int32(sh>>(2*uint(g))&3)<<4
			qs := blk[8+16*g : 24+16*g]
			qg := q[32*g : 32*g+32]
			var s int32
			for j, v := range qs {
				s += int32(iq4nl[v&15])*int32(qg[j]) + int32(iq4nl[v>>4])*int32(qg[j+16])
			}
			sumi += (ls - 32) * s
		}
		sum += dy * f16(blk) * float32(sumi)
	}
	return sum
}
