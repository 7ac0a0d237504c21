package ggml

// Block grids of the ternary types TQ1_0 and TQ2_0: one scale d per block
// of 256 and code t in 0..2 per element, value float32(t−1)·d, as the
// dequantizers compute it.

// tq1Pack returns the TQ1_0 byte of the trits t0..t4 (t0 the first
// element): the fixed-point fraction ceil(256·(t0·81 + … + t4)/243), as
// quantize_row_tq1_0_ref stores it.
func tq1Pack(t *[5]uint8) uint8 {
	var q uint8
	for _, v := range t {
		q = q*3 + v
	}
	return uint8((uint16(q)*256 + 242) / 243)
}

// tq1Grid maps TQ1_0 blocks to BlockGrids.
var tq1Grid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels, g.off = gridSym, 8, 3, 1
		g.s[0] = f16(blk[52:])
	},
	codes: func(blk []byte, codes []int) {
		for e := range codes {
			k, n := tq1Index(e)
			codes[e] = int(tq1Trit(blk[k], n))
		}
	},
	encode: func(codes []int, blk []byte) {
		var t [52][5]uint8
		for e, c := range codes {
			k, n := tq1Index(e)
			t[k][n] = uint8(c)
		}
		for k := range t {
			blk[k] = tq1Pack(&t[k])
		}
	},
}

// tq2Grid maps TQ2_0 blocks to BlockGrids. Code 3, which ggml never
// writes, is outside the grid (Levels is 3).
var tq2Grid = &gridFuncs{
	reset: func(g *BlockGrid, blk []byte) {
		g.kind, g.shift, g.levels, g.off = gridSym, 8, 3, 1
		g.s[0] = f16(blk[64:])
	},
	codes: func(blk []byte, codes []int) {
		for e := range codes {
			c, l, m := e/128, e/32%4, e%32
			codes[e] = int(blk[32*c+m]>>(2*uint(l))) & 3
		}
	},
	encode: func(codes []int, blk []byte) {
		clear(blk[:64])
		for e, v := range codes {
			c, l, m := e/128, e/32%4, e%32
			blk[32*c+m] |= byte(v&3) << (2 * uint(l))
		}
	},
}
