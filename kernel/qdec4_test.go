package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// TestDec4 checks the decode path with several activations — the
// four-token kernels where the level has them, the row kernels for the rest
// — against the float64 dot of each dequantized weight row with each
// Q8_0-quantized activation, at every level and thread count: adversarial
// weights (zero quants, all-ones quants, ±65504 scales) and activations
// (zeros, 1e4 and 1e-20 scales, lone spikes), token counts that leave
// remainders, several row tiles, and an odd block count (no four-token
// kernel).
func TestDec4(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	defer SetThreads(0)
	for _, dt := range []tensor.DType{tensor.Q4_0, tensor.Q8_0} {
		for _, sh := range [][2]int{{5, 64}, {37, 96}, {300, 2048}} {
			rows, cols := sh[0], sh[1]
			nb := cols / q8Block
			rb, _ := dt.RowBytes(cols)
			for wmode := 0; wmode < 4; wmode++ {
				data := randBlocks(r, dt, rows*nb, wmode)
				w, err := tensor.New("w", dt, []int{rows, cols}, data)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{4, 5, 8, 11, qMaxN} {
					x := gemmActs(r, n, cols)
					want := make([]float64, n*rows)
					mag := make([]float64, n*rows)
					for tk := 0; tk < n; tk++ {
						a := &q8Act{Q: make([]int8, cols), D: make([]float32, nb), S: make([]float32, nb)}
						ggml.QuantizeActQ8_0(a, x[tk*cols:(tk+1)*cols])
						for i := 0; i < rows; i++ {
							want[tk*rows+i], mag[tk*rows+i] = refQDot(t, dt, data[i*rb:(i+1)*rb], a)
						}
					}
					for _, l := range levels() {
						for _, th := range []int{1, 2} {
							name := fmt.Sprintf("%s %dx%d wmode=%d n=%d %v threads=%d", dt, rows, cols, wmode, n, l, th)
							SetThreads(th)
							out := make([]float32, n*rows+1)
							out[n*rows] = 42
							withLevel(t, l, func() {
								withQ(true, func() {
									if err := MatMul(out, x, n, w); err != nil {
										t.Fatal(err)
									}
								})
							})
							for i := 0; i < n*rows; i++ {
								tol := 1e-5*mag[i] + 1e-30
								if d := math.Abs(float64(out[i]) - want[i]); !(d <= tol) {
									t.Fatalf("%s: out[%d] = %g, want %g (mag %g)", name, i, out[i], want[i], mag[i])
								}
							}
							if out[n*rows] != 42 {
								t.Fatalf("%s: wrote past n*rows", name)
							}
						}
					}
				}
			}
		}
	}
}

// TestDec4Acts checks the spread scales and lane corrections against their
// definition.
func TestDec4Acts(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	const n, cols = 3, 128
	q := make([]int8, n*cols)
	for i := range q {
		q[i] = int8(r.IntN(255) - 127)
	}
	d := randVec(r, n*cols/q8Block)
	e, l := make([]float32, n*cols/4), make([]int32, n*cols/4)
	dec4Acts(e, l, q, d, n, cols)
	for tk := 0; tk < n; tk++ {
		for j := 0; j < cols/4; j++ {
			var s int32
			for k := 0; k < 4; k++ {
				s += int32(q[tk*cols+4*j+k])
			}
			if i := tk*cols/4 + j; l[i] != -8*s || e[i] != d[tk*cols/q8Block+4*j/q8Block] {
				t.Fatalf("token %d lane %d: e %g l %d, want %g %d", tk, j, e[i], l[i], d[tk*cols/q8Block+4*j/q8Block], -8*s)
			}
		}
	}
}
