package kernel

import (
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
