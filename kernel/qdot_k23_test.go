package kernel

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// TestQDotK23Exact checks that the Q2_K and Q3_K row dots give the
// reference dot's float32 bit for bit at every level, on random blocks,
// all-zero and all-ones quants, binary16 scales at ±65504, and activations
// at the int8 extremes.
func TestQDotK23Exact(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, dt := range []tensor.DType{tensor.Q2_K, tensor.Q3_K} {
		desc, ok := ggml.Lookup(dt)
		if !ok || desc.Dot == nil {
			t.Fatalf("%s: no reference dot", dt)
		}
		qt, _ := qTypeOf(dt)
		for _, nb := range []int{1, 2, 3, 8, 13} {
			cols := nb * dt.BlockSize()
			for wmode := 0; wmode < 4; wmode++ {
				for amode := 0; amode < 4; amode++ {
					w := randBlocks(r, dt, nb, wmode)
					a := randAct(r, qt.act, cols, amode)
					want := desc.Dot(w, a)
					for _, l := range levels() {
						got := qdotFor(l, dt, qt.generic)(w, a)
						if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
							t.Errorf("%s/%v nb=%d wmode=%d amode=%d: got %g (%#x), want %g (%#x)",
								dt, l, nb, wmode, amode, got, math.Float32bits(got), want, math.Float32bits(want))
						}
					}
				}
			}
		}
	}
}
