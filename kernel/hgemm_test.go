package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// halfWeight builds a rows×cols F16 or BF16 tensor from float32 values.
func halfWeight(t *testing.T, dt tensor.DType, rows, cols int, v []float32) *tensor.Tensor {
	t.Helper()
	data := make([]byte, 2*rows*cols)
	for i, f := range v[:rows*cols] {
		h := tensor.F32ToF16(f)
		if dt == tensor.BF16 {
			h = tensor.F32ToBF16(f)
		}
		data[2*i], data[2*i+1] = byte(h), byte(h>>8)
	}
	w, err := tensor.New("w", dt, []int{rows, cols}, data)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// halfTypes are the weight types of the fused kernels.
var halfTypes = []tensor.DType{tensor.F16, tensor.BF16}

// TestHalfMatMul checks MatMul on F16 and BF16 weights against the float64
// reference at every level, for column counts around the kernels' blocks
// of 16 and 32 (every tail), row counts around the four-row groups, token
// counts around the four-token kernel, and k blocks that cut rows short.
func TestHalfMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	colsList := []int{1, 2, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 97, 130, 257}
	if !testing.Short() {
		colsList = append(colsList, 1000, 2049)
	}
	for _, dt := range halfTypes {
		for _, cols := range colsList {
			for _, rows := range []int{1, 3, 4, 5, 9, 33} {
				w := halfWeight(t, dt, rows, cols, randVec(r, rows*cols))
				for _, n := range []int{1, 2, 3, 4, 5, 9, 17} {
					x := randVec(r, n*cols)
					want, mag := refMatMul(t, x, n, w)
					for _, l := range levels() {
						for _, kb := range []int{32, 64, 2048} {
							for _, th := range []int{1, 3} {
								name := fmt.Sprintf("%s/%dx%d/n=%d/%s/kb=%d/t=%d", dt, rows, cols, n, l, kb, th)
								withLevel(t, l, func() {
									restore := withConfig(func(c *Config) { c.Threads, c.TileRows, c.KBlock = th, 8, kb })
									defer restore()
									out := make([]float32, n*rows+1)
									out[n*rows] = 12345
									if err := MatMul(out, x, n, w); err != nil {
										t.Fatal(err)
									}
									for i := 0; i < n*rows; i++ {
										if !closeTo(out[i], want[i], mag[i]) {
											t.Fatalf("%s: token %d row %d: got %g, want %g (mag %g)", name, i/rows, i%rows, out[i], want[i], mag[i])
										}
									}
									if out[n*rows] != 12345 {
										t.Fatalf("%s: wrote past n*rows", name)
									}
								})
							}
						}
					}
				}
			}
		}
	}
}

// TestHalfBatchInvariant checks that on the fused route every token's
// outputs are bit for bit the same in every batch of two or more tokens, at
// any position, with any thread count and tile size, and that a lone token
// (the row kernels) agrees with them to float32 accuracy.
func TestHalfBatchInvariant(t *testing.T) {
	if !halfFused(supported, tensor.F16) {
		t.Skip("no fused half kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(43, 44))
	for _, dt := range halfTypes {
		if !halfFused(supported, dt) {
			t.Logf("%s: no fused kernels at %v", dt, supported)
			continue
		}
		for _, sh := range [][2]int{{7, 33}, {37, 100}, {64, 2048 + 31}} {
			rows, cols := sh[0], sh[1]
			w := halfWeight(t, dt, rows, cols, randVec(r, rows*cols))
			const n = 19
			x := randVec(r, n*cols)
			want, mag := refMatMul(t, x, n, w)
			withLevel(t, supported, func() {
				// Each token first in a pair with the last one.
				restore := withConfig(func(c *Config) { c.Threads = 1 })
				pair := make([]float32, n*rows)
				two, pout := make([]float32, 2*cols), make([]float32, 2*rows)
				copy(two[cols:], x[(n-1)*cols:])
				for tk := 0; tk < n; tk++ {
					copy(two, x[tk*cols:(tk+1)*cols])
					if err := MatMul(pout, two, 2, w); err != nil {
						t.Fatal(err)
					}
					copy(pair[tk*rows:], pout[:rows])
					one := make([]float32, rows)
					if err := MatMul(one, x[tk*cols:(tk+1)*cols], 1, w); err != nil {
						t.Fatal(err)
					}
					for i, v := range one {
						if !closeTo(v, want[tk*rows+i], mag[tk*rows+i]) {
							t.Fatalf("%s %dx%d alone: token %d row %d: got %g, want %g", dt, rows, cols, tk, i, v, want[tk*rows+i])
						}
					}
				}
				restore()
				for _, m := range []int{2, 3, 4, 5, 8, 13, n} {
					for _, th := range []int{1, 2, 3} {
						for _, tr := range []int{4, 32} {
							restore := withConfig(func(c *Config) { c.Threads, c.TileRows = th, tr })
							out := make([]float32, m*rows)
							off := n - m // the batch's tokens sit at other positions than in the pairs
							if err := MatMul(out, x[off*cols:], m, w); err != nil {
								t.Fatal(err)
							}
							restore()
							for i, v := range out {
								if a := pair[off*rows+i]; math.Float32bits(v) != math.Float32bits(a) {
									t.Fatalf("%s %dx%d n=%d threads=%d tileRows=%d: token %d row %d: batched %g, in a pair %g",
										dt, rows, cols, m, th, tr, off+i/rows, i%rows, v, a)
								}
							}
						}
					}
				}
			})
		}
	}
}

// TestHalfAdversarial puts NaN, infinities, denormals and values that
// overflow float32 products into weights and activations, and checks every
// level against the float64 reference: NaN where it is NaN, the infinity
// of its sign where it overflows float32, otherwise close (denormal sums
// to their own scale).
func TestHalfAdversarial(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	const cols, n = 77, 6
	for _, dt := range halfTypes {
		// Subnormal and near-largest values of the weight type.
		denorm, huge := float32(1e-40), float32(3e38) // bfloat16
		if dt == tensor.F16 {
			denorm, huge = 6e-8, 6e4
		}
		// Rows: 0 random, 1 one NaN, 2 one +Inf, 3 one -Inf, 4 subnormals, 5
		// huge and positive in its first ten columns, 6 zeros, 7 random.
		const rows = 8
		wv := randVec(r, rows*cols)
		row := func(i int) []float32 { return wv[i*cols : (i+1)*cols] }
		row(1)[40] = float32(math.NaN())
		row(2)[5] = float32(math.Inf(1))
		row(3)[70] = float32(math.Inf(-1))
		for i := range row(4) {
			row(4)[i] = denorm * float32(1+r.IntN(100))
		}
		for i := range 10 {
			row(5)[i] = huge
		}
		clear(row(6))
		// Tokens: 0 random, 1 one NaN, 2 one +Inf (where row 2 has its Inf:
		// +Inf·+Inf), 3 positive and huge (its products with row 5 overflow
		// float32), 4 tiny (products with row 4 underflow), 5 a zero where
		// rows 2 and 3 have their infinities (0·Inf = NaN). Where row 5 is
		// huge, tokens 0, 2 and 5 are in [0.5, 1): each product fits float32,
		// their sum does not, and no product overflows to -Inf.
		xv := randVec(r, n*cols)
		tok := func(i int) []float32 { return xv[i*cols : (i+1)*cols] }
		for _, tk := range []int{0, 2, 5} {
			tok(tk)[5], tok(tk)[70] = 1.5, 0.75 // positive where the infinities are
			for i := range 10 {
				tok(tk)[i] = 0.5 + r.Float32()/2
			}
		}
		tok(1)[13] = float32(math.NaN())
		tok(2)[5] = float32(math.Inf(1))
		for i := range tok(3) {
			tok(3)[i] = 1e35 * float32(1+r.IntN(4))
		}
		for i := range tok(4) {
			tok(4)[i] = 1e-38 * float32(r.IntN(5)-2)
		}
		tok(5)[5], tok(5)[70] = 0, 0
		w := halfWeight(t, dt, rows, cols, wv)
		want, mag := refMatMul(t, xv, n, w)
		for _, l := range levels() {
			for _, kb := range []int{32, 2048} {
				withLevel(t, l, func() {
					restore := withConfig(func(c *Config) { c.Threads, c.KBlock = 1, kb })
					defer restore()
					for _, m := range []int{1, n} { // one token at a time, and all
						out := make([]float32, n*rows)
						for t0 := 0; t0 < n; t0 += m {
							if err := MatMul(out[t0*rows:], xv[t0*cols:], m, w); err != nil {
								t.Fatal(err)
							}
						}
						for i, v := range out {
							g, wnt := float64(v), want[i]
							ok := false
							switch {
							case math.IsNaN(wnt):
								ok = math.IsNaN(g)
							case math.Abs(wnt) > math.MaxFloat32:
								ok = math.IsInf(g, int(math.Copysign(1, wnt)))
							default:
								ok = math.Abs(g-wnt) <= 1e-5*mag[i]+1e-44
							}
							if !ok {
								t.Errorf("%s %s kb=%d batch %d: token %d row %d: got %g, want %g (mag %g)", dt, l, kb, m, i/rows, i%rows, g, wnt, mag[i])
							}
						}
					}
				})
			}
		}
	}
}

// TestPermuteBF16 checks the block layout the BF16 kernels read.
func TestPermuteBF16(t *testing.T) {
	const n, cols, stride = 2, 37, 64
	x := make([]float32, n*cols)
	for i := range x {
		x[i] = float32(i + 1)
	}
	dst := make([]float32, n*stride)
	for i := range dst {
		dst[i] = -1
	}
	permuteBF16(dst, x, n, cols, stride)
	for tk := 0; tk < n; tk++ {
		for p := 0; p < stride; p++ {
			blk, i := p/32, p%32
			src := blk*32 + 2*i
			if i >= 16 {
				src = blk*32 + 2*(i-16) + 1
			}
			want := float32(0)
			if src < cols {
				want = x[tk*cols+src]
			}
			if got := dst[tk*stride+p]; got != want {
				t.Fatalf("token %d slot %d: got %g, want %g", tk, p, got, want)
			}
		}
	}
}
