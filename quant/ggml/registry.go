package ggml

import (
	"fmt"

	"github.com/terse-llm/terse/tensor"
)

// Type describes one element type of this package: its block layout and the
// functions that read, write and multiply it. Every type's file registers
// one Type at package initialization (see the package doc); the registry is
// read-only afterwards. Look a type up once per row or matrix (Lookup) and
// call its functions directly in inner loops.
type Type struct {
	// DType is the type's tensor element type (its ggml id).
	DType tensor.DType
	// BlockSize and BlockBytes are the elements and bytes of one block;
	// they must equal tensor's type table (DType.BlockSize, BlockBytes).
	BlockSize, BlockBytes int
	// Scales lists the byte offsets in a block of its binary16 scale
	// fields (d, dmin, m): the bytes that make a block's values finite or
	// not. Tests use it to build valid random blocks.
	Scales []int
	// SetScale writes the binary16 value h as the block's super-block
	// scale, leaving every other bit as it is, for a type whose scale is
	// not a whole field (IQ1_M spreads it over four nibbles). Nil for
	// the others, whose scales are the fields at Scales.
	SetScale func(blk []byte, h uint16)

	// Dequantize expands len(dst) elements (whole blocks) from src, which
	// holds exactly their bytes, bit for bit as ggml's dequantize_row_*.
	Dequantize func(src []byte, dst []float32)
	// Quantize encodes whole blocks of src into dst (exactly their bytes)
	// without importance weights, byte for byte as llama-quantize does.
	// Nil for a type terse reads but cannot write yet (QuantizeSupported
	// is false; the registry test lists those types).
	Quantize func(src []float32, dst []byte)
	// QuantizeWeighted encodes one row with importance weights qw (one per
	// element of row), as llama-quantize does with an imatrix entry. Nil
	// when the type ignores importance (Q8_0, the float types).
	QuantizeWeighted func(row []float32, dst []byte, qw []float32)
	// NeedsImportance marks types that llama.cpp refuses to quantize
	// without importance weights (the 1- and 2-bit lattice types);
	// Quantize then rejects a nil importance.
	NeedsImportance bool

	// Act is the quantized activation format Dot reads (ActNone: none).
	Act ActFormat
	// Dot is the reference integer dot product of one weight row (len(a.D)
	// activation blocks' worth of weight blocks) with a quantized
	// activation row, as ggml's ggml_vec_dot_<type>_q8_<0|K>: an exact
	// int32 sum per block, scaled and accumulated in float32. SIMD kernels
	// (package kernel) must agree with it. Nil: no integer path.
	Dot func(w []byte, a *ActRow) float32

	// grid maps encoded blocks to BlockGrids (nil: NewBlockGrid rejects
	// the type).
	grid *gridFuncs
}

// gridFuncs is how a type's blocks become BlockGrids: reset fills the
// grid's value parameters (kind, shift, levels, off, s, m, table) from an
// encoded block; codes and encode read and write the element codes, leaving
// every other bit of the block as it is.
type gridFuncs struct {
	reset  func(g *BlockGrid, blk []byte)
	codes  func(blk []byte, codes []int)
	encode func(codes []int, blk []byte)
}

// registry holds the registered types by DType (ggml ids are small). It is
// written only by register, from the type files' init functions.
var registry [64]*Type

// register adds t to the registry. A malformed or duplicate descriptor is a
// programming error in this package and panics at initialization (the
// registry test checks every type in detail).
func register(t *Type) {
	switch {
	case int(t.DType) >= len(registry):
		panic(fmt.Sprintf("ggml: register %s: id %d beyond the registry", t.DType, uint32(t.DType)))
	case registry[t.DType] != nil:
		panic(fmt.Sprintf("ggml: register %s: registered twice", t.DType))
	case t.BlockSize != t.DType.BlockSize() || t.BlockBytes != t.DType.BlockBytes():
		panic(fmt.Sprintf("ggml: register %s: layout %d elements in %d bytes, tensor says %d in %d",
			t.DType, t.BlockSize, t.BlockBytes, t.DType.BlockSize(), t.DType.BlockBytes()))
	case t.Dequantize == nil:
		panic(fmt.Sprintf("ggml: register %s: no dequantizer", t.DType))
	case t.Quantize == nil && t.QuantizeWeighted != nil:
		panic(fmt.Sprintf("ggml: register %s: a weighted quantizer without a plain one", t.DType))
	case (t.Dot == nil) != (t.Act == ActNone):
		panic(fmt.Sprintf("ggml: register %s: dot product and activation format must come together", t.DType))
	}
	registry[t.DType] = t
}

// lookup returns the registered descriptor of dt, or nil.
func lookup(dt tensor.DType) *Type {
	if int(dt) >= len(registry) {
		return nil
	}
	return registry[dt]
}

// Lookup returns (a copy of) the descriptor of dt and whether dt is
// registered.
func Lookup(dt tensor.DType) (Type, bool) {
	t := lookup(dt)
	if t == nil {
		return Type{}, false
	}
	return *t, true
}

// Types lists every registered type in ggml id order.
func Types() []tensor.DType {
	var ts []tensor.DType
	for _, t := range registry {
		if t != nil {
			ts = append(ts, t.DType)
		}
	}
	return ts
}
