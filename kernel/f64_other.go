//go:build !amd64 || purego

package kernel

// f64Tile is the 4×8 tile kernel (plain Go on this platform).
func f64Tile(_ level, a []float64, lda int, b []float64, ldb int, k int, out *[32]float64) {
	f64Tile4x8Generic(a, lda, b, ldb, k, out)
}
