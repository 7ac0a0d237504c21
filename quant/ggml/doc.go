// Package ggml holds ggml's element types: for each block type its layout,
// dequantizer, quantizers (byte-identical with llama-quantize), block grid
// (for GPTQ) and reference integer dot product, registered in one table.
//
// Every dequantizer reproduces ggml's reference dequantize_row_* (in
// ggml/src/ggml-quants.c) operation for operation in float32: scales stored
// as IEEE binary16 are widened exactly, each product and sum is rounded to
// float32 on its own, and no multiply-add is fused (Go may fuse x*y+z on some
// architectures unless the product is converted explicitly, so the code
// writes float32(x*y)+z wherever ggml's C does a separate multiply and add).
// The quantizers follow the same rule (quantize.go).
//
// # The registry
//
// Each type's file (q4_0.go, q4_1.go, q5_0.go, q5_1.go, q8_0.go, q2_k.go …
// q6_k.go, iq4_nl.go, iq4_xs.go, the lattice types iq1_s.go, iq1_m.go,
// iq2_xxs.go, iq2_xs.go, iq2_s.go, iq3_xxs.go, iq3_s.go, the ternary
// tq1_0.go, tq2_0.go; float.go for F32, F16 and BF16) describes
// its block layout in a comment and registers a Type from an init function:
// block size and bytes, the offsets of its binary16 scales, Dequantize,
// Quantize (no importance) and QuantizeWeighted (with an imatrix row), the
// activation format and reference Dot its integer path uses, and the
// functions that turn a block into a BlockGrid. Dequantize, Quantize,
// NewBlockGrid, Supported, QuantizeSupported and GridSupported look the type
// up there; code outside the package calls Lookup once per row or matrix and
// then the descriptor's functions directly. Code shared by several types
// sits beside them: legacy.go (the 32-element types' weighting and nibble
// packing), kquant.go (the k-quants' packed scales and shared
// quantizer), iq4.go (the non-linear codebook and its search),
// quantize_search.go (ggml's scale searches), iqlattice.go (the lattice
// types' sign table), iq1_search.go, iq2_search.go and iq3_search.go
// (ggml's lattice neighbour indexes and group searches) and act.go (the Q8_0 and Q8_K
// activation rows the dot products read).
//
// A type may register without a quantizer (Quantize nil: terse reads it
// but cannot write it; QuantizeSupported is false); registry_test.go's
// readOnly list names those types (today none: every registered type has
// its quantizer) so that none goes unnoticed.
//
// # Adding a type
//
// Write one file, say iq2_xxs.go, holding:
//
//   - the layout comment and constants (the type's id, block size and bytes
//     are already in tensor's type table for every ggml block type terse
//     knows of, TQ1_0 and TQ2_0 included; a type ggml numbers later needs
//     its line there too);
//   - dequantIQ2XXS(src []byte, dst []float32), bit-exact with ggml;
//   - the quantizer(s): Quantize without importance and QuantizeWeighted
//     with it, operation for operation as ggml's quantize_row_*_impl. Set
//     NeedsImportance where llama.cpp refuses to quantize without an
//     imatrix and ggml's quantizer needs one (IQ1_S, IQ2_XXS, IQ2_XS):
//     Quantize then rejects a nil importance (llama-quantize's wider
//     policy, by tensor name, is package compress's Plan.Check);
//   - the reference dot product against the activation format ggml pairs it
//     with (ActQ8_K for every 256-element type, ActQ8_0 for 32-element
//     ones), as ggml's ggml_vec_dot_<type>_q8_K: exact int32 block sums,
//     float32 scaling;
//   - optionally a gridFuncs value, when each element has its own code whose
//     value is monotonic under the block's scales (see grid.go); types whose
//     codes index a lattice of 8-weight vectors (IQ2_*, IQ3_*, IQ1_*) leave
//     it nil, and GPTQ then refuses them with a clear error;
//   - any tables the type needs (lattice grids such as ggml's iq2xxs_grid,
//     sign masks, ternary powers) as package-level arrays in the same file,
//     never written after initialization; a quantizer's search index
//     derived from them is built once, on first use, behind sync.OnceValue;
//   - an init function: register(&Type{DType: tensor.IQ2_XXS, ...}).
//
// The registry tests (registry_test.go) then check the new type with the
// others: its layout against tensor's table, quantize→dequantize error on
// random rows against a bound from its bits per weight, its Dot against the
// float dot of its dequantized weights and activations, and its grid
// against Dequantize. The byte-identical comparison with llama-quantize is
// one more file in TestQuantizeMatchesLlamaCpp's list once llama-quantize
// has written the type for the shared test model.
//
// A SIMD kernel for the type is optional and lives in package kernel: write
// it in kernel/qdot_amd64.s, wrap it as func(w []byte, a *ggml.ActRow)
// float32 in qdot_amd64.go and add one registerQKernel line to that file's
// init, at the level it needs. The kernel then picks it at run time (and
// under TERSE_KERNEL), and its tests check it against Dot at every level.
// Without one, the integer path runs the reference Dot.
package ggml
