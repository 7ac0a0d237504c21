//go:build amd64 && !purego

package kernel

import "github.com/terse-llm/terse/tensor"

// Implemented in qgemm16amx_amd64.s.

//go:noescape
func gemm16B32x16AMX(out []float32, ostride int, pack []byte, nb int, acts []byte)

//go:noescape
func widenQ4_0Tile(dst []byte, nb int)

// hasAMX reports whether the CPU has AMX-TILE and AMX-INT8, the OS saves
// tile state, and this process may use it (Linux grants that on request:
// amxPermit). It is computed once, before any kernel runs.
var hasAMX = func() bool {
	if detect() < levelAVX512 || !hasVNNI {
		return false
	}
	_, _, _, edx7 := cpuid(7, 0)
	const amxTile, amxInt8 = 1 << 24, 1 << 25
	if edx7&(amxTile|amxInt8) != amxTile|amxInt8 {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&(3<<17) != 3<<17 { // XTILECFG, XTILEDATA
		return false
	}
	return amxPermit()
}()

// gemm16AMX returns k, the sixteen-row kernels of dt weights, with sixteen-token
// AMX kernels added where there are some (Q8_0, and Q4_0 on
// tiles widened to the Q8_0 layout, whose fewer-token groups then take the
// Q8_0 VNNI kernels).
func gemm16AMX(k gemm16Kernels, dt tensor.DType) gemm16Kernels {
	if !hasAMX || !k.ok() {
		return k
	}
	switch dt {
	case tensor.Q8_0:
		k.x16 = gemm16B32x16AMX
	case tensor.Q4_0:
		k = gemm16Kernels{x16: gemm16B32x16AMX, x8: gemm16Q8_0x8VNNI, x4: gemm16Q8_0x4VNNI, x1: gemm16Q8_0x1VNNI,
			pack: pack16Q4_0Wide, blk: q8Block, tile: pack16Q8_0, actBlock: 40, wide: true}
	}
	return k
}

// pack16Q4_0Wide repacks sixteen Q4_0 rows into the Q8_0 tile layout with
// quants 0..15 (packQ4_0x16Wide): the nibble tiles first, at the end of dst,
// then widened in place.
func pack16Q4_0Wide(dst, w []byte, rb, nb int) {
	pack16Q4_0AVX512(dst[nb*(pack16Q8_0-pack16Q4_0):nb*pack16Q8_0], w, rb, nb)
	widenQ4_0Tile(dst[:nb*pack16Q8_0], nb)
}
