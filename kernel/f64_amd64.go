//go:build amd64 && !purego

package kernel

//go:noescape
func f64Tile4x8AVX2(a *float64, lda int, b *float64, ldb int, k int, out *[32]float64)

// f64Tile is the 4×8 tile kernel of level lvl; a holds 3·lda+k values and b
// (k−1)·ldb+8.
func f64Tile(lvl level, a []float64, lda int, b []float64, ldb int, k int, out *[32]float64) {
	if lvl >= levelAVX2 {
		_ = a[3*lda+k-1]
		_ = b[(k-1)*ldb+7]
		f64Tile4x8AVX2(&a[0], lda, &b[0], ldb, k, out)
		return
	}
	f64Tile4x8Generic(a, lda, b, ldb, k, out)
}
