//go:build amd64 && !purego

package kernel

//go:noescape
func f64SubScaled4AVX2(dst, u0, u1, u2, u3 *float64, n int, e *[4]float64)

//go:noescape
func f64SubScaled4AVX512(dst, u0, u1, u2, u3 *float64, n int, e *[4]float64)

//go:noescape
func f64SubScaledAVX2(dst, u *float64, n int, e float64)

//go:noescape
func f64Tile4x8AVX2(a *float64, lda int, b *float64, ldb int, k int, out *[64]float64)

//go:noescape
func f64Tile4x16AVX512(a *float64, lda int, b *float64, ldb int, k int, out *[64]float64)

// f64TileWidth is the tile kernel's column count at level lvl.
func f64TileWidth(lvl level) int {
	if lvl >= levelAVX512 {
		return 16
	}
	return 8
}

// f64Tile is the 4×f64TileWidth tile kernel of level lvl (out[w·r+s]); a
// holds 3·lda+k values and b (k−1)·ldb+w.
func f64Tile(lvl level, a []float64, lda int, b []float64, ldb int, k int, out *[64]float64) {
	switch {
	case lvl >= levelAVX512:
		_ = a[3*lda+k-1]
		_ = b[(k-1)*ldb+15]
		f64Tile4x16AVX512(&a[0], lda, &b[0], ldb, k, out)
	case lvl >= levelAVX2:
		_ = a[3*lda+k-1]
		_ = b[(k-1)*ldb+7]
		f64Tile4x8AVX2(&a[0], lda, &b[0], ldb, k, out)
	default:
		f64Tile4x8Generic(a, lda, b, ldb, k, out)
	}
}

func f64SubScaled4(lvl level, dst, u0, u1, u2, u3 []float64, e *[4]float64) {
	if n8 := len(dst) &^ 7; lvl >= levelAVX512 && n8 > 0 {
		f64SubScaled4AVX512(&dst[0], &u0[0], &u1[0], &u2[0], &u3[0], n8, e)
		if n8 == len(dst) {
			return
		}
		dst, u0, u1, u2, u3 = dst[n8:], u0[n8:], u1[n8:], u2[n8:], u3[n8:]
	}
	if lvl >= levelAVX2 {
		f64SubScaled4AVX2(&dst[0], &u0[0], &u1[0], &u2[0], &u3[0], len(dst), e)
		return
	}
	f64SubScaled4Generic(dst, u0, u1, u2, u3, e)
}

func f64SubScaled(lvl level, dst, u []float64, e float64) {
	if lvl >= levelAVX2 {
		f64SubScaledAVX2(&dst[0], &u[0], len(dst), e)
		return
	}
	f64SubScaledGeneric(dst, u, e)
}
