package kernel

// The decode path's four-token kernels (qdec4_amd64.s): when MatMul has
// several activations for Q8_0 or Q4_0 weights (batched decode of several
// sequences), it takes them four at a time against each weight row, so
// each weight block is loaded and unpacked once for four tokens. Besides
// the Q8_0 activations (qact.go) they read two arrays made once per call
// (dec4Acts), one entry per four quants: the activation's block scale
// spread over its block's eight lanes, and −8 × the sum of the lane's four
// quants (the correction for an unsigned weight operand: Q4_0's nibbles
// carry an offset of 8, and Q8_0's weights are made unsigned by adding
// 128 = 16·8).

// dec4Fn is a four-token decode kernel: for rows weight rows of rb bytes
// from w and the four activations whose quants (q), spread scales (e) and
// lane corrections (l) lie stride bytes apart, it sets out[j*ostride+i] to
// row i · activation j. nb is the block count per row, even and positive.
type dec4Fn func(out []float32, rows, ostride int, w []byte, rb int, q []int8, e []float32, l []int32, stride, nb int)

// dec4Acts fills, for each of the n activations of cols columns in q
// (quants) and d (one scale per 32-column block), e with each block's
// scale repeated for its eight four-quant lanes and l with −8 × each lane's
// quant sum: cols/4 entries per activation in each.
func dec4Acts(e []float32, l []int32, q []int8, d []float32, n, cols int) {
	lanes := cols / 4
	for t := 0; t < n; t++ {
		qt, dt := q[t*cols:(t+1)*cols], d[t*(cols/q8Block):]
		et, lt := e[t*lanes:(t+1)*lanes], l[t*lanes:(t+1)*lanes]
		for j := range lt {
			s := int32(qt[4*j]) + int32(qt[4*j+1]) + int32(qt[4*j+2]) + int32(qt[4*j+3])
			lt[j] = -8 * s
			et[j] = dt[j/(q8Block/4)]
		}
	}
}
