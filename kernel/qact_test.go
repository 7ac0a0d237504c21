package kernel

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
)

// TestQuantQ8_KLevels checks that quantQ8_K at every level matches
// ggml.QuantizeActQ8_K bit for bit (quants, scales and 16-quant sums) on
// random rows and adversarial ones: a zero block, −0 and denormals, ties
// of +amax and −amax (the first wins), NaN (never the maximum), ±Inf,
// huge values whose products leave the rounding trick's range, and values
// on rounding ties.
func TestQuantQ8_KLevels(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	for _, cols := range []int{256, 512, 2048} {
		for mode := 0; mode < 9; mode++ {
			x := randVec(r, cols)
			switch mode {
			case 1:
				clear(x[:256]) // a zero block
				x[3] = float32(math.Copysign(0, -1))
			case 2:
				for i := range x {
					x[i] = float32(r.IntN(9)-4) * 0.25 // ties, ±amax
				}
			case 3:
				x[5], x[200] = -7, 7 // −amax first
			case 4:
				x[3], x[100] = nan, 9 // NaN before the maximum
				x[cols-1] = nan
			case 5:
				x[17] = -inf
			case 6:
				for i := range x {
					x[i] *= 1e-40 // denormals
				}
			case 7:
				for i := range x {
					x[i] *= 3e38
				}
				x[9] = inf
			case 8:
				for i := range x {
					x[i] = float32(r.IntN(255)-127) + 0.5 // halves after scaling by 1
				}
				x[0] = 127
			}
			want := &q8Act{Q: make([]int8, cols), D: make([]float32, cols/qkBlock), BS: make([]int16, cols/16)}
			ggml.QuantizeActQ8_K(want, x)
			for _, l := range levels() {
				got := &q8Act{Q: make([]int8, cols), D: make([]float32, cols/qkBlock), BS: make([]int16, cols/16)}
				for i := range got.Q {
					got.Q[i] = int8(r.Uint32()) // stale data must be overwritten
				}
				for i := range got.BS {
					got.BS[i] = int16(r.Uint32())
				}
				quantQ8_K(l, got, x)
				for i := range want.Q {
					if got.Q[i] != want.Q[i] {
						t.Fatalf("%v cols=%d mode=%d: q[%d] = %d, want %d", l, cols, mode, i, got.Q[i], want.Q[i])
					}
				}
				for b := range want.D {
					if math.Float32bits(got.D[b]) != math.Float32bits(want.D[b]) {
						t.Fatalf("%v cols=%d mode=%d: block %d d = %g, want %g", l, cols, mode, b, got.D[b], want.D[b])
					}
				}
				for i := range want.BS {
					if got.BS[i] != want.BS[i] {
						t.Fatalf("%v cols=%d mode=%d: bs[%d] = %d, want %d", l, cols, mode, i, got.BS[i], want.BS[i])
					}
				}
			}
		}
	}
}

// BenchmarkQuantQ8_K times quantQ8_K on one 2048-column row at each level.
func BenchmarkQuantQ8_K(b *testing.B) {
	const cols = 2048
	x := randVec(rand.New(rand.NewPCG(1, 2)), cols)
	a := &q8Act{Q: make([]int8, cols), D: make([]float32, cols/qkBlock), BS: make([]int16, cols/16)}
	for _, l := range levels() {
		b.Run(l.String(), func(b *testing.B) {
			for b.Loop() {
				quantQ8_K(l, a, x)
			}
		})
	}
}
