//go:build amd64 && !purego

package kernel

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// TestIQ23Tables checks the kernels' tables against what ggml's formats
// say independently: IQ3_XXS grid magnitudes are 4·(2l+1) for l = 0..6
// and 62, IQ2_XXS's, IQ2_XS's and IQ2_S's 8, 25 and 43, IQ3_S's the odd
// 1..15, IQ1_S's values −1, 0, 1 (stored +1); the entries of each grid
// are distinct; every sign mask has an even number of negative bytes and
// agrees with its 7 stored bits.
func TestIQ23Tables(t *testing.T) {
	if iq3xxsGrid == nil || iq2xxsGrid == nil || iq2xsGrid == nil || iq3sGrid == nil || iq2sGrid == nil || iq1sGridPlus1 == nil {
		t.Fatal("a lattice grid could not be read from the reference dequantizer")
	}
	iq3 := map[uint64]bool{4: true, 12: true, 20: true, 28: true, 36: true, 44: true, 52: true, 62: true}
	iq2 := map[uint64]bool{8: true, 25: true, 43: true}
	iq3s := map[uint64]bool{1: true, 3: true, 5: true, 7: true, 9: true, 11: true, 13: true, 15: true}
	tests := []struct {
		name    string
		entries []uint64
		dim     int
		mags    map[uint64]bool
	}{
		{"IQ3_XXS", func() []uint64 {
			e := make([]uint64, 256)
			for i, v := range iq3xxsGrid {
				e[i] = uint64(v)
			}
			return e
		}(), 4, iq3},
		{"IQ2_XXS", iq2xxsGrid[:], 8, iq2},
		{"IQ2_XS", iq2xsGrid[:], 8, iq2},
		{"IQ2_S", iq2sGrid[:], 8, iq2},
		{"IQ1_S (values+1)", iq1sGridPlus1[:], 8, map[uint64]bool{0: true, 1: true, 2: true}},
		{"IQ3_S", func() []uint64 {
			e := make([]uint64, 512)
			for i, v := range iq3sGrid {
				e[i] = uint64(v)
			}
			return e
		}(), 4, iq3s},
	}
	for _, tc := range tests {
		seen := map[uint64]bool{}
		for i, e := range tc.entries {
			if seen[e] {
				t.Errorf("%s: entry %d (%#x) repeats", tc.name, i, e)
			}
			seen[e] = true
			for j := 0; j < tc.dim; j++ {
				if m := e >> (8 * uint(j)) & 0xff; !tc.mags[m] {
					t.Errorf("%s: entry %d byte %d = %d, not a grid magnitude", tc.name, i, j, m)
				}
			}
			if tc.dim < 8 && e>>(8*uint(tc.dim)) != 0 {
				t.Errorf("%s: entry %d (%#x) has bytes past %d", tc.name, i, e, tc.dim)
			}
		}
	}
	for s, m := range iqSignMasks {
		neg := 0
		for j := 0; j < 8; j++ {
			switch b := byte(m >> (8 * uint(j))); b {
			case 0xff:
				neg++
				if j < 7 && s>>uint(j)&1 == 0 {
					t.Errorf("sign mask %d: byte %d negative, bit clear", s, j)
				}
			case 0x01:
				if j < 7 && s>>uint(j)&1 != 0 {
					t.Errorf("sign mask %d: byte %d positive, bit set", s, j)
				}
			default:
				t.Errorf("sign mask %d: byte %d = %#x", s, j, b)
			}
		}
		if neg%2 != 0 || neg < bits.OnesCount8(uint8(s)) {
			t.Errorf("sign mask %d: %d negatives", s, neg)
		}
	}
}

// TestIQ23RowsFullRange checks the IQ3_XXS, IQ2_XXS, IQ2_XS, IQ3_S, IQ2_S,
// TQ2_0, IQ1_S, IQ1_M and TQ1_0 row dots at every level against the reference dot, bit for bit, on
// activation quants over the whole int8 range, which TestQRowsExact
// (−127..127, what the Q8_K quantizer makes) does not reach: uniform
// −128..127, all −128, −128 and 127 alternating; weights of every
// randBlocks mode.
func TestIQ23RowsFullRange(t *testing.T) {
	r := rand.New(rand.NewPCG(81, 82))
	for _, dt := range []tensor.DType{tensor.IQ3_XXS, tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ3_S, tensor.IQ2_S, tensor.TQ2_0, tensor.IQ1_S, tensor.IQ1_M, tensor.TQ1_0} {
		qt, _ := qTypeOf(dt)
		const nb = 3
		cols, rb := nb*dt.BlockSize(), nb*dt.BlockBytes()
		for wmode := 0; wmode < 4; wmode++ {
			w := randBlocks(r, dt, nb, wmode)
			for amode := 0; amode < 3; amode++ {
				a := exactAct(r, dt, cols, 0, 0)
				for i := range a.Q {
					switch amode {
					case 0:
						a.Q[i] = int8(r.IntN(256) - 128)
					case 1:
						a.Q[i] = -128
					case 2:
						a.Q[i] = -128
						if i%2 == 1 {
							a.Q[i] = 127
						}
					}
				}
				for j := range a.BS {
					var s int16
					for _, v := range a.Q[16*j : 16*j+16] {
						s += int16(v)
					}
					a.BS[j] = s
				}
				want := qt.generic(w[:rb], a)
				for _, l := range levels() {
					got := qdotFor(l, dt, qt.generic)(w[:rb], a)
					if !sameFloat(got, want) {
						t.Errorf("%s/%v wmode=%d amode=%d: %g (%#x), reference %g (%#x)",
							dt, l, wmode, amode, got, math.Float32bits(got), want, math.Float32bits(want))
					}
				}
			}
		}
	}
}
