//go:build !amd64 || purego

package kernel

// f64TileWidth is the tile kernel's column count.
func f64TileWidth(level) int { return 8 }

// f64Tile is the 4×8 tile kernel (plain Go on this platform).
func f64Tile(_ level, a []float64, lda int, b []float64, ldb int, k int, out *[64]float64) {
	f64Tile4x8Generic(a, lda, b, ldb, k, out)
}

func f64SubScaled4(_ level, dst, u0, u1, u2, u3 []float64, e *[4]float64) {
	f64SubScaled4Generic(dst, u0, u1, u2, u3, e)
}

func f64SubScaled(_ level, dst, u []float64, e float64) { f64SubScaledGeneric(dst, u, e) }
