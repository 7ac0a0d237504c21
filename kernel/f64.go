package kernel

import "fmt"

// F64MulAdd adds (sub false) or subtracts (sub true) the float64 matrix
// product A·B to or from C: C[i][j] ±= Σ_p A[i][p]·B[p][j] for i < m,
// j < n, p < k, all three row-major with row strides lda, ldb and ldc
// (in elements). It runs on the calling goroutine (callers split the work
// between threads), in register tiles of 4 rows by 8 columns (16 at the
// AVX-512 level) over k-blocks of 256 so that a block of B stays in cache;
// the AVX2 and AVX-512 levels use fused multiply-add tile kernels, so their sums are rounded differently from the
// generic level's (within ordinary float64 accumulation error; each level
// is deterministic).
func F64MulAdd(c []float64, ldc int, a []float64, lda int, b []float64, ldb int, m, n, k int, sub bool) error {
	if m < 0 || n < 0 || k < 0 || ldc < n || lda < k || ldb < n {
		return fmt.Errorf("f64 matmul: %d×%d by %d×%d with strides %d, %d, %d", m, k, k, n, lda, ldb, ldc)
	}
	if m == 0 || n == 0 || k == 0 {
		return nil
	}
	if len(a) < (m-1)*lda+k || len(b) < (k-1)*ldb+n || len(c) < (m-1)*ldc+n {
		return fmt.Errorf("f64 matmul: %d×%d by %d×%d: buffers of %d, %d and %d values too small", m, k, k, n, len(a), len(b), len(c))
	}
	f64MulAdd(active, c, ldc, a, lda, b, ldb, m, n, k, sub)
	return nil
}

// f64KBlock is the k-block of F64MulAdd.
const f64KBlock = 256

func f64MulAdd(lvl level, c []float64, ldc int, a []float64, lda int, b []float64, ldb int, m, n, k int, sub bool) {
	var acc [64]float64
	sign := 1.0
	if sub {
		sign = -1
	}
	tw := f64TileWidth(lvl)
	for p0 := 0; p0 < k; p0 += f64KBlock {
		kk := min(f64KBlock, k-p0)
		for i := 0; i < m; i += 4 {
			mi := min(4, m-i)
			for j := 0; j < n; j += tw {
				nj := min(tw, n-j)
				if mi == 4 && nj == tw {
					f64Tile(lvl, a[i*lda+p0:], lda, b[p0*ldb+j:], ldb, kk, &acc)
				} else {
					f64TileEdge(a[i*lda+p0:], lda, b[p0*ldb+j:], ldb, kk, mi, nj, tw, &acc)
				}
				for r := 0; r < mi; r++ {
					row := c[(i+r)*ldc+j : (i+r)*ldc+j+nj]
					for s := range row {
						row[s] += sign * acc[tw*r+s]
					}
				}
			}
		}
	}
}

// f64Tile4x8Generic is the 4×8 tile kernel in plain Go: out[8r+s] =
// Σ_p a[r·lda+p]·b[p·ldb+s], p < k, summed in order of p.
func f64Tile4x8Generic(a []float64, lda int, b []float64, ldb int, k int, out *[64]float64) {
	var c [32]float64
	a0, a1, a2, a3 := a[:k], a[lda:lda+k], a[2*lda:2*lda+k], a[3*lda:3*lda+k]
	for p := 0; p < k; p++ {
		bp := b[p*ldb : p*ldb+8]
		x0, x1, x2, x3 := a0[p], a1[p], a2[p], a3[p]
		for s, y := range bp {
			c[s] += x0 * y
			c[8+s] += x1 * y
			c[16+s] += x2 * y
			c[24+s] += x3 * y
		}
	}
	copy(out[:32], c[:])
}

// f64TileEdge is an mi×nj tile (at most 4×tw, tw ≤ 16) in plain Go, for
// the edges: out[tw·r+s].
func f64TileEdge(a []float64, lda int, b []float64, ldb int, k, mi, nj, tw int, out *[64]float64) {
	*out = [64]float64{}
	for r := 0; r < mi; r++ {
		ar := a[r*lda : r*lda+k]
		o := out[tw*r : tw*r+nj]
		for p, x := range ar {
			bp := b[p*ldb : p*ldb+nj]
			for s, y := range bp {
				o[s] += x * y
			}
		}
	}
}

// F64SubScaled4 subtracts e[0]·u0 + e[1]·u1 + e[2]·u2 + e[3]·u3 from dst,
// element by element: dst[j] −= ((e0·u0[j] + e1·u1[j]) + e2·u2[j]) +
// e3·u3[j], with every product and sum rounded as that Go expression
// rounds it (no fused multiply-add), so every level gives the same bits.
// The u slices must be at least as long as dst.
func F64SubScaled4(dst, u0, u1, u2, u3 []float64, e *[4]float64) {
	n := len(dst)
	if n == 0 {
		return
	}
	u0, u1, u2, u3 = u0[:n], u1[:n], u2[:n], u3[:n]
	f64SubScaled4(active, dst, u0, u1, u2, u3, e)
}

// F64SubScaled subtracts e·u from dst element by element (dst[j] −= e·u[j],
// the product rounded before the difference, as Go rounds it), the same
// bits at every level. u must be at least as long as dst.
func F64SubScaled(dst, u []float64, e float64) {
	n := len(dst)
	if n == 0 {
		return
	}
	f64SubScaled(active, dst, u[:n], e)
}

func f64SubScaled4Generic(dst, u0, u1, u2, u3 []float64, e *[4]float64) {
	e0, e1, e2, e3 := e[0], e[1], e[2], e[3]
	u0, u1, u2, u3 = u0[:len(dst)], u1[:len(dst)], u2[:len(dst)], u3[:len(dst)]
	for j := range dst {
		dst[j] -= e0*u0[j] + e1*u1[j] + e2*u2[j] + e3*u3[j]
	}
}

func f64SubScaledGeneric(dst, u []float64, e float64) {
	u = u[:len(dst)]
	for j, v := range u {
		dst[j] -= e * v
	}
}
