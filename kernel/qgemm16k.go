package kernel

import (
	"encoding/binary"
	"math"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// The k-quant (and IQ4_XS) sixteen-row tiles (qgemm16k_amd64.s,
// qgemm16k2_amd64.s, qgemm16iq_amd64.s): the layout of
// qgemm16.go with 256-column super-blocks, every weight widened to an
// unsigned byte at repacking so the kernels unpack nothing, and the
// sub-block scales (and Q4_K's mins) spread into 16-lane int32 vectors.
// Q5_K tiles take the Q4_K layout and kernels, Q3_K tiles the Q6_K ones;
// Q2_K tiles hold each quant times its sub-block scale (packQ2Kx16).

// Repacked super-block sizes (sixteen rows) and the interleaved
// activations' bytes per super-block and token: 256 quants, the scale, 16
// int32 sums.
const (
	pack16Q4K  = 64 + 64 + 8*64 + 8*64 + 64*64 // d, dmin, scales, mins, quants: 5248
	pack16Q6K  = 64 + 16*64 + 64*64            // d, scales, quants: 5184
	pack16IQ4X = 64 + 8*64 + 64*64             // d, scales, quants: 4672
	actBlockK  = 256 + 4 + 64
	pack16KQ4K = 1152                   // Q4_K quants offset
	pack16KQ6K = 1088                   // Q6_K quants offset
	pack16KIQX = 576                    // IQ4_XS quants offset
	pack16Q2K  = 64 + 64 + 8*64 + 64*64 // d, dmin, mins, quants: 4736
	pack16KQ2K = 640                    // Q2_K quants offset
)

// putF32 stores v at b[0:4].
func putF32(b []byte, v float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(v)) }

// putI32 stores v at b[0:4].
func putI32(b []byte, v int32) { binary.LittleEndian.PutUint32(b, uint32(v)) }

// k16Word stores the unsigned quants of row r, columns c..c+3 (c a
// multiple of 4), the bytes of x in column order, at the tile quants o.
func k16Word(o []byte, r, c int, x uint32) { binary.LittleEndian.PutUint32(o[(c>>2)*64+4*r:], x) }

// iq4Tile is the IQ4 value table plus 128, as the IQ4_XS tiles hold it.
var iq4Tile = func() (t [16]byte) {
	for i := range t {
		t[i] = byte(int32(ggml.IQ4Value(byte(i))) + 128)
	}
	return t
}()

// packQ4Kx16 repacks sixteen Q4_K rows (row r at w[r*rb:]) of nb
// super-blocks into dst (nb·pack16Q4K bytes): per super-block the rows' d
// and dmin as float32, their eight sub-block scales and mins as int32
// vectors (vector s: sub-block s of all rows), then the quants (0..15).
func packQ4Kx16(dst, w []byte, rb, nb int) {
	for b := 0; b < nb; b++ {
		o := dst[b*pack16Q4K : (b+1)*pack16Q4K]
		for r := 0; r < 16; r++ {
			blk := w[r*rb+b*144 : r*rb+b*144+144]
			putF32(o[4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk)))
			putF32(o[64+4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk[2:])))
			sc, m := ggml.ScaleMinK4(blk[4:16])
			for s := 0; s < 8; s++ {
				putI32(o[128+64*s+4*r:], sc[s])
				putI32(o[640+64*s+4*r:], m[s])
			}
			qo := o[pack16KQ4K:]
			for c := 0; c < 4; c++ {
				for l := 0; l < 32; l += 4 { // four columns a word
					x := binary.LittleEndian.Uint32(blk[16+32*c+l:])
					k16Word(qo, r, 64*c+l, x&0x0f0f0f0f)
					k16Word(qo, r, 64*c+32+l, x>>4&0x0f0f0f0f)
				}
			}
		}
	}
}

// packQ5Kx16 repacks sixteen Q5_K rows into the Q4_K tile layout
// (packQ4Kx16), the quants 0..31 with their fifth bits: the Q4_K kernels
// take the tiles unchanged.
func packQ5Kx16(dst, w []byte, rb, nb int) {
	for b := 0; b < nb; b++ {
		o := dst[b*pack16Q4K : (b+1)*pack16Q4K]
		for r := 0; r < 16; r++ {
			blk := w[r*rb+b*176 : r*rb+b*176+176]
			putF32(o[4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk)))
			putF32(o[64+4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk[2:])))
			sc, m := ggml.ScaleMinK4(blk[4:16])
			for s := 0; s < 8; s++ {
				putI32(o[128+64*s+4*r:], sc[s])
				putI32(o[640+64*s+4*r:], m[s])
			}
			qo, qh := o[pack16KQ4K:], blk[16:48]
			for c := 0; c < 4; c++ {
				for l := 0; l < 32; l += 4 { // four columns a word
					x, h := binary.LittleEndian.Uint32(blk[48+32*c+l:]), binary.LittleEndian.Uint32(qh[l:])
					k16Word(qo, r, 64*c+l, x&0x0f0f0f0f|(h>>uint(2*c)&0x01010101)<<4)
					k16Word(qo, r, 64*c+32+l, x>>4&0x0f0f0f0f|(h>>uint(2*c+1)&0x01010101)<<4)
				}
			}
		}
	}
}

// q3KScale is the signed 6-bit scale of sub-block s of a Q3_K block whose
// 12 packed scale bytes are p.
func q3KScale(s int, p []byte) int32 {
	lo := p[s%8] & 15
	if s >= 8 {
		lo = p[s-8] >> 4
	}
	return int32(lo|(p[8+s%4]>>uint(2*(s/4))&3)<<4) - 32
}

// packQ3Kx16 repacks sixteen Q3_K rows into the Q6_K tile layout
// (packQ6Kx16): the rows' d, their sixteen signed sub-block scales, then
// the quants as 0..7 (value + 4; the −4 offset is the activations'
// correction): the Q6_K kernels take the tiles unchanged.
func packQ3Kx16(dst, w []byte, rb, nb int) {
	for b := 0; b < nb; b++ {
		o := dst[b*pack16Q6K : (b+1)*pack16Q6K]
		for r := 0; r < 16; r++ {
			blk := w[r*rb+b*110 : r*rb+b*110+110]
			putF32(o[4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk[108:])))
			qo, hm := o[pack16KQ6K:], blk[0:32]
			for s := 0; s < 16; s++ {
				putI32(o[64+64*s+4*r:], q3KScale(s, blk[96:108]))
				half, shift, part := s/8, uint(2*(s%8/2)), s%2
				src, hs := blk[32+32*half+16*part:48+32*half+16*part], hm[16*part:16*part+16]
				for i := 0; i < 4; i++ { // four columns a word
					x := binary.LittleEndian.Uint32(src[4*i:]) >> shift & 0x03030303
					h := binary.LittleEndian.Uint32(hs[4*i:]) >> uint(s/2) & 0x01010101
					k16Word(qo, r, 16*s+4*i, x|h<<2)
				}
			}
		}
	}
}

// packQ2Kx16 repacks sixteen Q2_K rows: per super-block the rows' d and
// dmin as float32, their sixteen 4-bit mins as eight vectors of int16
// pairs (vector j: mins 2j and 2j+1 of all rows, for VPDPWSSD), then the
// quants already multiplied by their sub-block scales (0..45), so the
// kernels sum all 256 products of a row without a per-sub-block multiply.
func packQ2Kx16(dst, w []byte, rb, nb int) {
	for b := 0; b < nb; b++ {
		o := dst[b*pack16Q2K : (b+1)*pack16Q2K]
		for r := 0; r < 16; r++ {
			blk := w[r*rb+b*84 : r*rb+b*84+84]
			putF32(o[4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk[80:])))
			putF32(o[64+4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk[82:])))
			for j := 0; j < 8; j++ {
				putI32(o[128+64*j+4*r:], int32(blk[2*j]>>4)|int32(blk[2*j+1]>>4)<<16)
			}
			qo := o[pack16KQ2K:]
			for s := 0; s < 16; s++ {
				half, shift, part := s/8, uint(2*(s%8/2)), s%2
				src, sc := blk[16+32*half+16*part:32+32*half+16*part], uint32(blk[s]&15)
				for i := 0; i < 4; i++ {
					// four 2-bit quants times the scale: at most 45, so
					// the bytes of the product do not carry
					k16Word(qo, r, 16*s+4*i, (binary.LittleEndian.Uint32(src[4*i:])>>shift&0x03030303)*sc)
				}
			}
		}
	}
}

// packQ6Kx16 repacks sixteen Q6_K rows: per super-block the rows' d as
// float32, their sixteen sub-block scales as int32 vectors, then the
// quants (0..63; the −32 offset is the activations' correction).
func packQ6Kx16(dst, w []byte, rb, nb int) {
	for b := 0; b < nb; b++ {
		o := dst[b*pack16Q6K : (b+1)*pack16Q6K]
		for r := 0; r < 16; r++ {
			blk := w[r*rb+b*210 : r*rb+b*210+210]
			putF32(o[4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk[208:])))
			for j := 0; j < 16; j++ {
				putI32(o[64+64*j+4*r:], int32(int8(blk[192+j])))
			}
			qo := o[pack16KQ6K:]
			for h := 0; h < 2; h++ {
				ql, qh := blk[64*h:64*h+64], blk[128+32*h:160+32*h]
				for l := 0; l < 32; l += 4 { // four columns a word
					lo, hi := binary.LittleEndian.Uint32(ql[l:]), binary.LittleEndian.Uint32(ql[l+32:])
					x := binary.LittleEndian.Uint32(qh[l:])
					const m4, m2 = 0x0f0f0f0f, 0x03030303
					k16Word(qo, r, 128*h+l, lo&m4|(x&m2)<<4)
					k16Word(qo, r, 128*h+32+l, hi&m4|(x>>2&m2)<<4)
					k16Word(qo, r, 128*h+64+l, lo>>4&m4|(x>>4&m2)<<4)
					k16Word(qo, r, 128*h+96+l, hi>>4&m4|(x>>6&m2)<<4)
				}
			}
		}
	}
}

// packIQ4XSx16 repacks sixteen IQ4_XS rows: per super-block the rows' d
// as float32, their eight 32-column sub-block scales (ls−32) as int32
// vectors, then the quants as the non-linear value plus 128 (1..241; the
// offset is the activations' correction).
func packIQ4XSx16(dst, w []byte, rb, nb int) {
	for b := 0; b < nb; b++ {
		o := dst[b*pack16IQ4X : (b+1)*pack16IQ4X]
		for r := 0; r < 16; r++ {
			blk := w[r*rb+b*136 : r*rb+b*136+136]
			putF32(o[4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk)))
			sh := binary.LittleEndian.Uint16(blk[2:])
			for s := 0; s < 8; s++ {
				ls := int32(blk[4+s/2]>>(4*uint(s%2)))&15 | int32(sh>>(2*uint(s))&3)<<4
				putI32(o[64+64*s+4*r:], ls-32)
			}
			qo := o[pack16KIQX:]
			for s := 0; s < 8; s++ {
				q := blk[8+16*s : 24+16*s]
				for l := 0; l < 16; l += 4 { // four columns a word
					x := binary.LittleEndian.Uint32(q[l:])
					var lo, hi uint32
					for i := uint(0); i < 32; i += 8 {
						v := byte(x >> i)
						lo |= uint32(iq4Tile[v&15]) << i
						hi |= uint32(iq4Tile[v>>4]) << i
					}
					k16Word(qo, r, 32*s+l, lo)
					k16Word(qo, r, 32*s+16+l, hi)
				}
			}
		}
	}
}

// gemm16ActsK interleaves the tokens' Q8_K activations (quants q, scales
// d, 16-quant sums bs) into acts, group by group: per super-block the
// group's g×256 quants, its g scales (float32), then 16 int32 per token:
// for Q4_K and Q5_K the sums of the eight 32-column sub-blocks, for IQ4_XS
// −128 times them, for Q6_K −32 and for Q3_K −4 times the sums of the
// sixteen 16-column ones; for Q2_K those sixteen sums as eight int16 pairs
// (for VPDPWSSD), then zeros.
func gemm16ActsK(acts []byte, groups []gemm16Group, q []int8, d []float32, bs []int16, cols int, dt tensor.DType) {
	nb := cols / qkBlock
	for _, gr := range groups {
		o := acts[gr.off:]
		for b := 0; b < nb; b++ {
			blk := o[b*gr.g*actBlockK : (b+1)*gr.g*actBlockK]
			for i := 0; i < gr.g; i++ {
				t := gr.t + min(i, gr.n-1)
				for k, v := range q[t*cols+b*qkBlock : t*cols+(b+1)*qkBlock] {
					blk[i*256+k] = byte(v)
				}
				putF32(blk[gr.g*256+4*i:], d[t*nb+b])
				aux := blk[gr.g*260+64*i : gr.g*260+64*i+64]
				sums := bs[(t*nb+b)*16 : (t*nb+b+1)*16]
				if dt == tensor.Q2_K {
					for j := 0; j < 16; j++ {
						putI32(aux[4*j:], 0)
						if j < 8 {
							putI32(aux[4*j:], int32(uint16(sums[2*j]))|int32(sums[2*j+1])<<16)
						}
					}
					continue
				}
				mul := int32(-32)
				if dt == tensor.Q3_K {
					mul = -4
				}
				for j := 0; j < 16; j++ {
					if dt == tensor.Q4_K || dt == tensor.Q5_K || dt == tensor.IQ4_XS {
						mul := int32(1)
						if dt == tensor.IQ4_XS {
							mul = -128
						}
						if j < 8 {
							putI32(aux[4*j:], mul*(int32(sums[2*j])+int32(sums[2*j+1])))
						} else {
							putI32(aux[4*j:], 0)
						}
						continue
					}
					putI32(aux[4*j:], mul*int32(sums[j]))
				}
			}
		}
	}
}
