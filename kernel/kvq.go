package kernel

import (
	"fmt"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Entry points for caches that keep keys and values in ggml block types
// (package kv): the integer dot products and row dequantizers of the
// weight path, applied to cache rows.

// QDotRows sets out[i] = (row i of w) · a for len(out) rows of ggml type
// dt that start rb bytes apart in w, each of len(a.Q) elements, with the
// integer kernel dispatched for dt (the registry's reference dot where no
// SIMD override exists). It reports false, leaving out alone, when dt has
// no integer path.
func QDotRows(dt tensor.DType, out []float32, w []byte, rb int, a *ggml.ActRow) bool {
	t, ok := qTypeOf(dt)
	if !ok {
		return false
	}
	l := active
	if f := qrowsFor(l, dt); f != nil {
		f(out, w, rb, a)
		return true
	}
	dot := qdotFor(l, dt, t.generic)
	n := len(a.Q) / dt.BlockSize() * dt.BlockBytes()
	for i := range out {
		out[i] = dot(w[i*rb:i*rb+n], a)
	}
	return true
}

// DequantRow expands len(dst) elements (whole blocks of ggml type dt) from
// src with the dispatched row dequantizer, bit for bit as the registry's
// Dequantize. It reports false when dt is not a registered type.
func DequantRow(dt tensor.DType, dst []float32, src []byte) bool {
	if dequantRow(active, dt, dst, src) {
		return true
	}
	t, ok := ggml.Lookup(dt)
	if !ok {
		return false
	}
	t.Dequantize(src[:len(dst)/t.BlockSize*t.BlockBytes], dst)
	return true
}

// Packed integer codes (KIVI's keys and values in package kv): b-bit
// unsigned codes (b = 2, 4 or 8) of a row of channels, packed in blocks of
// 32 channels of 4·b bytes each. Within a block, channel c is in byte
// c mod 4b at bit b·⌊c/4b⌋: for 4 bits byte j holds channels j and j+16
// (ggml's Q4_0 order), for 2 bits channels j, j+8, j+16 and j+24, for 8
// bits byte c is channel c. The layout lets SIMD code widen 8 bytes into 8
// lanes and peel the codes off with shifts.

// CodeBlock is the number of channels in a block of packed codes.
const CodeBlock = 32

// PutCode stores code q (0 ≤ q < 2^b) of channel c into packed codes
// whose bits for c are clear.
func PutCode(codes []byte, c, b, q int) {
	nb := 4 * b
	blk, i := c/CodeBlock, c%CodeBlock
	codes[blk*nb+i%nb] |= byte(q << (b * (i / nb)))
}

// Code returns the code of channel c in packed codes.
func Code(codes []byte, c, b int) int {
	nb := 4 * b
	blk, i := c/CodeBlock, c%CodeBlock
	return int(codes[blk*nb+i%nb]>>(b*(i/nb))) & (1<<b - 1)
}

// DotCodes returns Σ_c w[c]·code_c over len(w) channels (a multiple of
// CodeBlock) of b-bit packed codes.
func DotCodes(w []float32, codes []byte, b int) float32 {
	if len(w)%CodeBlock != 0 || len(codes) < len(w)*b/8 {
		panic(fmt.Sprintf("kernel.DotCodes: %d channels of %d-bit codes in %d bytes", len(w), b, len(codes)))
	}
	return dotCodes(active, w, codes, b)
}

// AxpyCodes sets out[c] += a·code_c over len(out) channels (a multiple of
// CodeBlock) of b-bit packed codes.
func AxpyCodes(out []float32, a float32, codes []byte, b int) {
	if len(out)%CodeBlock != 0 || len(codes) < len(out)*b/8 {
		panic(fmt.Sprintf("kernel.AxpyCodes: %d channels of %d-bit codes in %d bytes", len(out), b, len(codes)))
	}
	axpyCodes(active, out, a, codes, b)
}

// dotCodesGeneric is DotCodes in plain Go: four partial sums, one per
// quarter of each block.
func dotCodesGeneric(w []float32, codes []byte, b int) float32 {
	var s [4]float32
	nb, mask := 4*b, byte(1<<b-1)
	for blk := 0; blk < len(w)/CodeBlock; blk++ {
		wb, cb := w[blk*CodeBlock:(blk+1)*CodeBlock], codes[blk*nb:(blk+1)*nb]
		for i := 0; i < CodeBlock; i++ {
			s[i/8] += wb[i] * float32(cb[i%nb]>>(b*(i/nb))&mask)
		}
	}
	return (s[0] + s[1]) + (s[2] + s[3])
}

// axpyCodesGeneric is AxpyCodes in plain Go.
func axpyCodesGeneric(out []float32, a float32, codes []byte, b int) {
	nb, mask := 4*b, byte(1<<b-1)
	for blk := 0; blk < len(out)/CodeBlock; blk++ {
		ob, cb := out[blk*CodeBlock:(blk+1)*CodeBlock], codes[blk*nb:(blk+1)*nb]
		for i := range ob {
			ob[i] += a * float32(cb[i%nb]>>(b*(i/nb))&mask)
		}
	}
}

// DotCodesRows sets dst[r] = Σ_c w[c]·code_{r,c} for the len(dst) rows of
// len(w) channels (a multiple of CodeBlock) of b-bit packed codes that
// follow each other in codes.
func DotCodesRows(dst, w []float32, codes []byte, b int) {
	rb := len(w) * b / 8
	if len(w)%CodeBlock != 0 || len(codes) < len(dst)*rb {
		panic(fmt.Sprintf("kernel.DotCodesRows: %d rows of %d channels of %d-bit codes in %d bytes", len(dst), len(w), b, len(codes)))
	}
	for r := range dst {
		dst[r] = dotCodes(active, w, codes[r*rb:(r+1)*rb], b)
	}
}

// AxpyCodesRows sets out[c] += Σ_r a[r·k + c/CodeBlock]·code_{r,c} for
// len(out) channels (a multiple of CodeBlock, k = len(out)/CodeBlock
// blocks) over the len(a)/k rows of b-bit packed codes that follow each
// other in codes: a weighted sum of code rows with one weight per row and
// block.
func AxpyCodesRows(out, a []float32, codes []byte, b int) {
	k := len(out) / CodeBlock
	if len(out)%CodeBlock != 0 || k == 0 || len(a)%k != 0 || len(codes) < len(a)*4*b {
		panic(fmt.Sprintf("kernel.AxpyCodesRows: %d weights for %d channels of %d-bit codes in %d bytes", len(a), len(out), b, len(codes)))
	}
	axpyCodesRows(active, out, a, codes, b)
}

// axpyCodesRowsGeneric is AxpyCodesRows one block at a time.
func axpyCodesRowsGeneric(l level, out, a []float32, codes []byte, b int) {
	nb := 4 * b
	k := len(out) / CodeBlock
	for r := 0; r < len(a)/k; r++ {
		for blk := 0; blk < k; blk++ {
			off := (r*k + blk) * nb
			axpyCodes(l, out[blk*CodeBlock:(blk+1)*CodeBlock], a[r*k+blk], codes[off:off+nb], b)
		}
	}
}
