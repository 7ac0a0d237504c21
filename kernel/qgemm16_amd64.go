//go:build amd64 && !purego

package kernel

import "github.com/terse-llm/terse/tensor"

// Implemented in qgemm16_amd64.s.

//go:noescape
func gemm16Q4_0x8PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16Q4_0x8VNNI is gemm16Q4_0x8PF prefetching nothing.
func gemm16Q4_0x8VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16Q4_0x8PF(out, ostride, pack, nb, acts, nil)
}

//go:noescape
func gemm16Q4_0x4VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16Q4_0x1VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16Q8_0x8PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16Q8_0x8VNNI is gemm16Q8_0x8PF prefetching nothing.
func gemm16Q8_0x8VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16Q8_0x8PF(out, ostride, pack, nb, acts, nil)
}

//go:noescape
func gemm16Q8_0x4VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16Q8_0x1VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

// Implemented in qgemm16k8_amd64.s.

//go:noescape
func gemm16Q4_Kx8PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16Q4_Kx8VNNI is gemm16Q4_Kx8PF prefetching nothing.
func gemm16Q4_Kx8VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16Q4_Kx8PF(out, ostride, pack, nb, acts, nil)
}

// gemm16Q6_Kx8VNNI is gemm16Q6_Kx8PF prefetching nothing.
func gemm16Q6_Kx8VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16Q6_Kx8PF(out, ostride, pack, nb, acts, nil)
}

// Implemented in qgemm16k_amd64.s.

//go:noescape
func gemm16Q4_Kx4PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16Q4_Kx4VNNI is gemm16Q4_Kx4PF prefetching nothing.
func gemm16Q4_Kx4VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16Q4_Kx4PF(out, ostride, pack, nb, acts, nil)
}

//go:noescape
func gemm16Q4_Kx1VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16Q6_Kx8PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

//go:noescape
func gemm16Q6_Kx4PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16Q6_Kx4VNNI is gemm16Q6_Kx4PF prefetching nothing.
func gemm16Q6_Kx4VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16Q6_Kx4PF(out, ostride, pack, nb, acts, nil)
}

//go:noescape
func gemm16Q6_Kx1VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16IQ4_XSx8VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16IQ4_XSx4VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16IQ4_XSx1VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

// Implemented in qgemm16l_amd64.s (and pack16IQ4_NLAVX512 in
// qgemm16iq_amd64.s).

//go:noescape
func gemm16Q4_1x8VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16Q4_1x4VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16Q4_1x1VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func pack16Q4_1AVX512(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q5_0AVX512(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q5_1AVX512(dst, w []byte, rb, nb int)

//go:noescape
func pack16IQ4_NLAVX512(dst, w []byte, rb, nb int)

// Implemented in qgemm16avx2_amd64.s.

//go:noescape
func gemm16Q4_0x4AVX2PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16Q4_0x4AVX2 is gemm16Q4_0x4AVX2PF prefetching nothing.
func gemm16Q4_0x4AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16Q4_0x4AVX2PF(out, ostride, pack, nb, acts, nil)
}

//go:noescape
func gemm16Q4_0x1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16Q8_0x4AVX2PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16Q8_0x4AVX2 is gemm16Q8_0x4AVX2PF prefetching nothing.
func gemm16Q8_0x4AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16Q8_0x4AVX2PF(out, ostride, pack, nb, acts, nil)
}

//go:noescape
func gemm16Q8_0x1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func pack16Q4_0AVX2(dst, w []byte, rb, nb int)

// Implemented in qgemm16kavx2_amd64.s.

//go:noescape
func gemm16Q4_Kx4AVX2PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16Q4_Kx4AVX2 is gemm16Q4_Kx4AVX2PF prefetching nothing.
func gemm16Q4_Kx4AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16Q4_Kx4AVX2PF(out, ostride, pack, nb, acts, nil)
}

//go:noescape
func gemm16Q4_Kx1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16Q6_Kx4AVX2PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16Q6_Kx4AVX2 is gemm16Q6_Kx4AVX2PF prefetching nothing.
func gemm16Q6_Kx4AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16Q6_Kx4AVX2PF(out, ostride, pack, nb, acts, nil)
}

//go:noescape
func gemm16Q6_Kx1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16IQ4_XSx4AVX2PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16IQ4_XSx4AVX2 is gemm16IQ4_XSx4AVX2PF prefetching nothing.
func gemm16IQ4_XSx4AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16IQ4_XSx4AVX2PF(out, ostride, pack, nb, acts, nil)
}

//go:noescape
func gemm16IQ4_XSx1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func pack16Q8_0AVX2(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q6_KAVX2(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q3_KAVX2(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q4_KAVX2(dst, w []byte, rb, nb int)

// The AVX2 repackings of the legacy types into packLegacy4x16's tiles.
//
//go:noescape
func pack16IQ4_NLAVX2(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q5_0AVX2(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q4_1AVX2(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q5_1AVX2(dst, w []byte, rb, nb int)

// pack16Q5_KAVX2 is packQ5Kx16 with AVX2 transposes.
//
//go:noescape
func pack16Q5_KAVX2(dst, w []byte, rb, nb int)

//go:noescape
func pack16IQ4_XSAVX2(dst, w []byte, rb, nb int)

// Implemented in qgemm16lavx2_amd64.s.

//go:noescape
func gemm16Q4_1x4AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16Q4_1x1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)

// Implemented in qgemm16q5kavx2_amd64.s.

//go:noescape
func gemm16Q5_Kx4AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16Q5_Kx1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)

// Implemented in qgemm16q2avx2_amd64.s.

//go:noescape
func gemm16Q2_Kx4AVX2PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16Q2_Kx4AVX2 is gemm16Q2_Kx4AVX2PF prefetching nothing.
func gemm16Q2_Kx4AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte) {
	gemm16Q2_Kx4AVX2PF(out, ostride, pack, nb, acts, nil)
}

//go:noescape
func gemm16Q2_Kx1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func pack16Q2_KAVX2(dst, w []byte, rb, nb int)

// Implemented in qgemm16k2_amd64.s.

//go:noescape
func gemm16Q2_Kx8VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func gemm16Q2_Kx1VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func pack16Q2_KAVX512(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q3_KAVX512(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q5_KAVX512(dst, w []byte, rb, nb int)

//go:noescape
func pack16IQ4_XSAVX512(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q4_0AVX512(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q8_0AVX512(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q4_KAVX512(dst, w []byte, rb, nb int)

//go:noescape
func pack16Q6_KAVX512(dst, w []byte, rb, nb int)

// gemm16For returns the sixteen-row kernels for dt weights at level l, or
// none (ok false) where there are none.
func gemm16For(l level, dt tensor.DType) (k gemm16Kernels) {
	if l < levelAVX2 {
		return k
	}
	if l < levelAVX512 || !hasVNNI {
		// AVX2 kernels on the same tiles. Decode batches take them only
		// for the exact row types: the others would take the tiles at
		// every batch size (qTileRoute), one token included, where the
		// rows are faster; so Q4_1, Q5_0, Q5_1, IQ4_NL and Q5_K take them
		// for prefill only (prefillOnly). Two or three tokens
		// stay on the rows (minDecode), since these sets have no two-token
		// kernel.
		switch dt {
		case tensor.Q4_0:
			return gemm16Kernels{x4: gemm16Q4_0x4AVX2, x4pf: gemm16Q4_0x4AVX2PF, x1: gemm16Q4_0x1AVX2, pack: pack16Q4_0AVX2, blk: q8Block, tile: pack16Q4_0, actBlock: 40, minDecode: 4}
		case tensor.Q8_0:
			return gemm16Kernels{x4: gemm16Q8_0x4AVX2, x4pf: gemm16Q8_0x4AVX2PF, x1: gemm16Q8_0x1AVX2, pack: pack16Q8_0AVX2, blk: q8Block, tile: pack16Q8_0, actBlock: 40, q127: true, minDecode: 4}
		case tensor.Q4_K:
			return gemm16Kernels{x4: gemm16Q4_Kx4AVX2, x4pf: gemm16Q4_Kx4AVX2PF, x1: gemm16Q4_Kx1AVX2, pack: pack16Q4_KAVX2, blk: qkBlock, tile: pack16Q4K, actBlock: actBlockK, minDecode: 4}
		case tensor.Q6_K:
			return gemm16Kernels{x4: gemm16Q6_Kx4AVX2, x4pf: gemm16Q6_Kx4AVX2PF, x1: gemm16Q6_Kx1AVX2, pack: pack16Q6_KAVX2, blk: qkBlock, tile: pack16Q6K, actBlock: actBlockK, minDecode: 4}
		case tensor.Q3_K: // the Q6_K tile layout and kernels
			return gemm16Kernels{x4: gemm16Q6_Kx4AVX2, x4pf: gemm16Q6_Kx4AVX2PF, x1: gemm16Q6_Kx1AVX2, pack: pack16Q3_KAVX2, blk: qkBlock, tile: pack16Q6K, actBlock: actBlockK, minDecode: 4}
		case tensor.IQ4_XS:
			return gemm16Kernels{x4: gemm16IQ4_XSx4AVX2, x4pf: gemm16IQ4_XSx4AVX2PF, x1: gemm16IQ4_XSx1AVX2, pack: pack16IQ4_XSAVX2, blk: qkBlock, tile: pack16IQ4X, actBlock: actBlockK, q127: true, minDecode: 4}
		case tensor.Q2_K:
			return gemm16Kernels{x4: gemm16Q2_Kx4AVX2, x4pf: gemm16Q2_Kx4AVX2PF, x1: gemm16Q2_Kx1AVX2, pack: pack16Q2_KAVX2, blk: qkBlock, tile: pack16Q2K, actBlock: actBlockK, minDecode: 4}
		case tensor.Q5_K: // the Q4_K tile layout
			return gemm16Kernels{x4: gemm16Q5_Kx4AVX2, x1: gemm16Q5_Kx1AVX2, pack: pack16Q5_KAVX2, blk: qkBlock, tile: pack16Q4K, actBlock: actBlockK, prefillOnly: true}
		case tensor.Q4_1:
			return gemm16Kernels{x4: gemm16Q4_1x4AVX2, x1: gemm16Q4_1x1AVX2, pack: pack16Q4_1AVX2, blk: q8Block, tile: pack16Q4_1, actBlock: 40, prefillOnly: true}
		case tensor.Q5_1: // the Q4_1 kernels
			return gemm16Kernels{x4: gemm16Q4_1x4AVX2, x1: gemm16Q4_1x1AVX2, pack: pack16Q5_1AVX2, blk: q8Block, tile: pack16Q4_1, actBlock: 40, prefillOnly: true}
		case tensor.Q5_0: // the Q8_0 kernels, on tiles of value+128 (packLegacy4x16)
			return gemm16Kernels{x4: gemm16Q8_0x4AVX2, x4pf: gemm16Q8_0x4AVX2PF, x1: gemm16Q8_0x1AVX2, pack: pack16Q5_0AVX2, blk: q8Block, tile: pack16Q8_0, actBlock: 40, q127: true, prefillOnly: true}
		case tensor.IQ4_NL:
			return gemm16Kernels{x4: gemm16Q8_0x4AVX2, x4pf: gemm16Q8_0x4AVX2PF, x1: gemm16Q8_0x1AVX2, pack: pack16IQ4_NLAVX2, blk: q8Block, tile: pack16Q8_0, actBlock: 40, q127: true, prefillOnly: true}
		}
		return k
	}
	switch dt {
	case tensor.Q4_0:
		return gemm16Kernels{x8: gemm16Q4_0x8VNNI, x8pf: gemm16Q4_0x8PF, x4: gemm16Q4_0x4VNNI, x1: gemm16Q4_0x1VNNI, pack: pack16Q4_0AVX512,
			blk: q8Block, tile: pack16Q4_0, actBlock: 40}
	case tensor.Q8_0:
		return gemm16Kernels{x8: gemm16Q8_0x8VNNI, x8pf: gemm16Q8_0x8PF, x4: gemm16Q8_0x4VNNI, x1: gemm16Q8_0x1VNNI, pack: pack16Q8_0AVX512,
			blk: q8Block, tile: pack16Q8_0, actBlock: 40}
	case tensor.Q5_0: // the Q8_0 tile layout and kernels
		return gemm16Kernels{x8: gemm16Q8_0x8VNNI, x8pf: gemm16Q8_0x8PF, x4: gemm16Q8_0x4VNNI, x1: gemm16Q8_0x1VNNI, pack: pack16Q5_0AVX512,
			blk: q8Block, tile: pack16Q8_0, actBlock: 40}
	case tensor.IQ4_NL: // the Q8_0 tile layout and kernels
		return gemm16Kernels{x8: gemm16Q8_0x8VNNI, x8pf: gemm16Q8_0x8PF, x4: gemm16Q8_0x4VNNI, x1: gemm16Q8_0x1VNNI, pack: pack16IQ4_NLAVX512,
			blk: q8Block, tile: pack16Q8_0, actBlock: 40}
	case tensor.Q4_1:
		return gemm16Kernels{x8: gemm16Q4_1x8VNNI, x4: gemm16Q4_1x4VNNI, x1: gemm16Q4_1x1VNNI, pack: pack16Q4_1AVX512,
			blk: q8Block, tile: pack16Q4_1, actBlock: 40}
	case tensor.Q5_1: // the Q4_1 tile layout and kernels
		return gemm16Kernels{x8: gemm16Q4_1x8VNNI, x4: gemm16Q4_1x4VNNI, x1: gemm16Q4_1x1VNNI, pack: pack16Q5_1AVX512,
			blk: q8Block, tile: pack16Q4_1, actBlock: 40}
	case tensor.Q4_K:
		return gemm16Kernels{x8: gemm16Q4_Kx8VNNI, x8pf: gemm16Q4_Kx8PF, x4: gemm16Q4_Kx4VNNI, x4pf: gemm16Q4_Kx4PF, x1: gemm16Q4_Kx1VNNI, pack: pack16Q4_KAVX512,
			blk: qkBlock, tile: pack16Q4K, actBlock: actBlockK}
	case tensor.Q5_K: // the Q4_K tile layout and kernels
		return gemm16Kernels{x8: gemm16Q4_Kx8VNNI, x8pf: gemm16Q4_Kx8PF, x4: gemm16Q4_Kx4VNNI, x4pf: gemm16Q4_Kx4PF, x1: gemm16Q4_Kx1VNNI, pack: pack16Q5_KAVX512,
			blk: qkBlock, tile: pack16Q4K, actBlock: actBlockK}
	case tensor.Q3_K: // the Q6_K tile layout and kernels
		return gemm16Kernels{x8: gemm16Q6_Kx8VNNI, x8pf: gemm16Q6_Kx8PF, x4: gemm16Q6_Kx4VNNI, x4pf: gemm16Q6_Kx4PF, x1: gemm16Q6_Kx1VNNI, pack: pack16Q3_KAVX512,
			blk: qkBlock, tile: pack16Q6K, actBlock: actBlockK}
	case tensor.Q2_K:
		return gemm16Kernels{x8: gemm16Q2_Kx8VNNI, x1: gemm16Q2_Kx1VNNI, pack: pack16Q2_KAVX512,
			blk: qkBlock, tile: pack16Q2K, actBlock: actBlockK}
	case tensor.Q6_K:
		return gemm16Kernels{x8: gemm16Q6_Kx8VNNI, x8pf: gemm16Q6_Kx8PF, x4: gemm16Q6_Kx4VNNI, x4pf: gemm16Q6_Kx4PF, x1: gemm16Q6_Kx1VNNI, pack: pack16Q6_KAVX512,
			blk: qkBlock, tile: pack16Q6K, actBlock: actBlockK}
	case tensor.IQ4_XS:
		return gemm16Kernels{x8: gemm16IQ4_XSx8VNNI, x4: gemm16IQ4_XSx4VNNI, x1: gemm16IQ4_XSx1VNNI, pack: pack16IQ4_XSAVX512,
			blk: qkBlock, tile: pack16IQ4X, actBlock: actBlockK}
	}
	return k
}
