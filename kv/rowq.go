package kv

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/terse-llm/terse/tensor"
)

// rowFmt is how one head's key or value row is stored by the zip, stair
// and gear caches: bits 16 is binary16; bits 1…8 are asymmetric uniform
// codes in groups of group channels, each group a binary16 scale and
// minimum (x ≈ min + scale·code, codes 0…2^bits−1) followed by its codes
// packed least significant bit first.
type rowFmt struct{ bits, group int }

// bytes is the size of one row of hd channels.
func (f rowFmt) bytes(hd int) int {
	if f.bits == 16 {
		return 2 * hd
	}
	ng := hd / f.group
	return ng * (4 + (f.group*f.bits+7)/8)
}

// groupBytes is the size of one group (scale, minimum, codes).
func (f rowFmt) groupBytes() int { return 4 + (f.group*f.bits+7)/8 }

// quant stores x (hd channels) into dst in format f.
func (f rowFmt) quant(dst []byte, x []float32) {
	if f.bits == 16 {
		putF16Row(dst, x)
		return
	}
	levels := 1<<f.bits - 1
	gb := f.groupBytes()
	for g := 0; g*f.group < len(x); g++ {
		xs := x[g*f.group : (g+1)*f.group]
		b := dst[g*gb : (g+1)*gb]
		lo, hi := xs[0], xs[0]
		for _, v := range xs {
			lo, hi = min(lo, v), max(hi, v)
		}
		// A step past binary16's range (only 1 to 2 bits over a group
		// spanning ±65504) is held at its largest value; the top
		// codes then clamp.
		st := min((hi-lo)/float32(levels), 65504)
		s, m := groupParams(lo, lo+st*float32(levels), levels, b[0:2], b[2:4])
		codes := b[4:]
		clear(codes)
		for i, v := range xs {
			putBits(codes, i*f.bits, f.bits, code(v, s, m, levels))
		}
	}
}

// dequant widens a row stored in format f into dst (hd channels).
func (f rowFmt) dequant(dst []float32, src []byte) {
	if f.bits == 16 {
		for i := range dst {
			dst[i] = f16At(src, i)
		}
		return
	}
	gb := f.groupBytes()
	mask := uint64(1)<<f.bits - 1
	for g := 0; g*f.group < len(dst); g++ {
		b := src[g*gb : (g+1)*gb]
		s, m := f16At(b, 0), f16At(b, 1)
		codes := b[4:]
		out := dst[g*f.group : (g+1)*f.group]
		var acc uint64
		have, next := 0, 0
		for i := range out {
			for have < f.bits {
				acc |= uint64(codes[next]) << have
				next++
				have += 8
			}
			out[i] = m + s*float32(acc&mask)
			acc >>= f.bits
			have -= f.bits
		}
	}
}

// dot is q · the row stored in src (at most 256 channels).
func (f rowFmt) dot(q []float32, src []byte) float32 {
	var buf [256]float32
	x := buf[:len(q)]
	f.dequant(x, src)
	var s float32
	for i, v := range q {
		s += v * x[i]
	}
	return s
}

// axpy adds w · the row stored in src to dst (at most 256 channels).
func (f rowFmt) axpy(dst []float32, w float32, src []byte) {
	if w == 0 {
		return
	}
	var buf [256]float32
	x := buf[:len(dst)]
	f.dequant(x, src)
	for i, v := range x {
		dst[i] += w * v
	}
}

// putBits stores the low n bits of v at bit offset off of b (least
// significant bit first).
func putBits(b []byte, off, n, v int) {
	for i := 0; i < n; i++ {
		if v>>i&1 != 0 {
			b[(off+i)>>3] |= 1 << ((off + i) & 7)
		}
	}
}

// rotation is a randomized Walsh–Hadamard transform of one head's
// channels, x ↦ H·D·x/√hd with D a fixed diagonal of random signs: an
// orthonormal map, so q·k = (Rq)·(Rk) and Σ w·v = Rᵀ(Σ w·Rv). It spreads
// outlier channels over all channels before per-token quantization
// (QuaRot's and RotateKV's rotation). Keys are rotated after RoPE, as the
// engine stores them; the rotation is the same for every position, so it
// commutes with nothing it must commute with.
type rotation struct {
	sign []float32
}

// newRotation is the rotation of hd channels (a power of two) with the
// package's fixed signs, or nil when hd is not a power of two.
func newRotation(hd int) *rotation {
	if hd < 2 || hd&(hd-1) != 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(0x7e25e, uint64(hd)))
	r := &rotation{sign: make([]float32, hd)}
	for i := range r.sign {
		r.sign[i] = 1
		if rng.IntN(2) == 0 {
			r.sign[i] = -1
		}
	}
	return r
}

// forward sets dst = H·D·src/√hd (dst and src may be the same).
func (r *rotation) forward(dst, src []float32) {
	for i, x := range src {
		dst[i] = x * r.sign[i]
	}
	fwht(dst)
}

// inverse sets dst = D·H·src/√hd, undoing forward.
func (r *rotation) inverse(dst, src []float32) {
	copy(dst, src)
	fwht(dst)
	for i := range dst {
		dst[i] *= r.sign[i]
	}
}

// fwht is the orthonormal fast Walsh–Hadamard transform in place.
func fwht(x []float32) {
	n := len(x)
	for h := 1; h < n; h <<= 1 {
		for i := 0; i < n; i += 2 * h {
			for j := i; j < i+h; j++ {
				a, b := x[j], x[j+h]
				x[j], x[j+h] = a+b, a-b
			}
		}
	}
	s := float32(1 / math.Sqrt(float64(n)))
	for i := range x {
		x[i] *= s
	}
}

// f16Round is x rounded to binary16 and back.
func f16Round(x float32) float32 { return tensor.F16ToF32(tensor.F32ToF16(x)) }

// putU16 stores v little-endian.
func putU16(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v) }
