package kernel

import (
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Integer dot products of one quantized weight row with one quantized
// activation row (q8Act), the way ggml's ggml_vec_dot_<type>_q8_<0|K> does
// them: per block, an exact int32 sum of weight quant × activation quant,
// scaled by the two blocks' float32 scales and accumulated in float32.
//
// The generic kernels are the reference dot products of quant/ggml's type
// registry (ggml.Type.Dot): a weight type takes the integer path when its
// descriptor has one. The SIMD files (qdot_amd64.go) register overrides in
// qKernels for the types and levels they accelerate; they compute the same
// integer block sums. For the exactRowType types (qExactTypes in the
// tests: the types with sixteen-row kernels, Q2_K, Q3_K, and the lattice
// and ternary types of qdot_iq23_amd64.go and qdot_tq_amd64.go) the
// overrides also do the float32 scaling and accumulation in the
// reference's order, so they give its result bit for bit; the others may
// order them differently. Kernels are chosen once per weight matrix.

// exactRowType reports whether dt's row kernels, at every level, give the
// reference dot bit for bit (TestQRowsExact), as the
// sixteen-row kernels do: a one-token decode may then take the rows
// without changing results (qTileRoute).
func exactRowType(dt tensor.DType) bool {
	switch dt {
	case tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q6_K, tensor.IQ4_XS, tensor.Q2_K, tensor.Q3_K,
		tensor.IQ3_XXS, tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ3_S, tensor.IQ2_S, tensor.TQ2_0, tensor.IQ1_S, tensor.IQ1_M, tensor.TQ1_0:
		return true
	}
	return false
}

// q8Act is one quantized activation row (ggml.ActRow).
type q8Act = ggml.ActRow

// actFormat is the activation layout a weight type dots against.
type actFormat = ggml.ActFormat

const (
	actQ8_0 = ggml.ActQ8_0
	actQ8_K = ggml.ActQ8_K
)

// qdotFn returns row · activation for a weight row w of len(a.Q) elements.
type qdotFn = func(w []byte, a *q8Act) float32

// qrowsFn sets out[i] = (row i of w) · a for the len(out) rows of rb bytes
// each at the start of w (len(w) >= len(out)·rb).
type qrowsFn = func(out []float32, w []byte, rb int, a *q8Act)

// qType describes a weight type the integer path handles.
type qType struct {
	act     actFormat
	generic qdotFn
}

// qTypeOf returns the integer-path description of dt, if it has one.
func qTypeOf(dt tensor.DType) (qType, bool) {
	t, ok := ggml.Lookup(dt)
	if !ok || t.Dot == nil {
		return qType{}, false
	}
	return qType{t.Act, t.Dot}, true
}

// qKernel is one SIMD override for weights of one type, usable at level
// min and above. Any of its functions may be nil (none at this level).
type qKernel struct {
	min     level
	dot     qdotFn
	rows    qrowsFn
	dequant func(dst []float32, src []byte) // whole blocks, bit-exact with ggml.Dequantize
}

// qKernels is the integer path's part of the kernel dispatch table: per
// weight type, its overrides in the order registered (qKernelPick chooses
// among them).
// It is written only by registerQKernel from init functions.
var qKernels [64][]qKernel

// registerQKernel adds an override for weight type dt. Registering a type
// that has no reference dot (or whose activation format differs) is caught
// by TestQKernelRegistry.
func registerQKernel(dt tensor.DType, k qKernel) {
	qKernels[dt] = append(qKernels[dt], k)
}

// qKernelsFor returns dt's overrides.
func qKernelsFor(dt tensor.DType) []qKernel {
	if int(dt) >= len(qKernels) {
		return nil
	}
	return qKernels[dt]
}

// qKernelPick returns the index in ks of the override that serves level l
// among those with the function has looks for: the one with the highest
// min not above l, the last registered among equals, so that which file's
// init ran first does not matter; -1 where there is none.
func qKernelPick(ks []qKernel, l level, has func(*qKernel) bool) int {
	best := -1
	for i := range ks {
		k := &ks[i]
		if k.min <= l && has(k) && (best < 0 || k.min >= ks[best].min) {
			best = i
		}
	}
	return best
}

// qdotFor returns the row kernel for weights of type dt at level l: the
// override qKernelPick chooses, or generic.
func qdotFor(l level, dt tensor.DType, generic qdotFn) qdotFn {
	ks := qKernelsFor(dt)
	if i := qKernelPick(ks, l, func(k *qKernel) bool { return k.dot != nil }); i >= 0 {
		return ks[i].dot
	}
	return generic
}

// qrowsFor returns a kernel that dots consecutive rows of dt weights with
// one activation in a single call, or nil where level l has none.
func qrowsFor(l level, dt tensor.DType) qrowsFn {
	ks := qKernelsFor(dt)
	if i := qKernelPick(ks, l, func(k *qKernel) bool { return k.rows != nil }); i >= 0 {
		return ks[i].rows
	}
	return nil
}

// dequantRow widens one row of a quantized type into dst with a SIMD
// routine, reporting false where level l has none for dt. Results equal
// ggml.Dequantize's bit for bit.
func dequantRow(l level, dt tensor.DType, dst []float32, src []byte) bool {
	ks := qKernelsFor(dt)
	i := qKernelPick(ks, l, func(k *qKernel) bool { return k.dequant != nil })
	if i < 0 || len(dst)%dt.BlockSize() != 0 {
		return false
	}
	ks[i].dequant(dst, src[:len(dst)/dt.BlockSize()*dt.BlockBytes()])
	return true
}
