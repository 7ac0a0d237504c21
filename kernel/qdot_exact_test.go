package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// qExactTypes are the weight types whose row kernels give the reference
// dot (ggml.Type.Dot) bit for bit at every level: the types with
// sixteen-row kernels, so that a one-token decode on the rows equals a
// batched decode on the tiles.
var qExactTypes = []tensor.DType{tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q6_K, tensor.IQ4_XS, tensor.Q2_K, tensor.Q3_K, tensor.IQ3_XXS, tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ3_S, tensor.IQ2_S, tensor.TQ2_0, tensor.IQ1_S, tensor.IQ1_M, tensor.TQ1_0}

// exactAct returns a random activation (randAct modes 0-3) whose block
// scales are, for smode 1, huge (up to 2^100) and, for smode 2, tiny
// (down to 2^-120, subnormal products included), else randAct's.
func exactAct(r *rand.Rand, dt tensor.DType, cols, amode, smode int) *q8Act {
	qt, _ := qTypeOf(dt)
	a := randAct(r, qt.act, cols, amode)
	for b := range a.D {
		switch smode {
		case 1:
			a.D[b] = float32(math.Ldexp(1+r.Float64(), 80+r.IntN(20)))
		case 2:
			a.D[b] = float32(math.Ldexp(1+r.Float64(), -100-r.IntN(20)))
		}
	}
	return a
}

// TestQRowsExact checks every row kernel (single-row and multi-row) of the
// qExactTypes at every dispatch level against the generic dot, bit for
// bit: random, zero, all-0xff and ±65504-scale weights; random, +127,
// −127 and zero activation quants; normal, huge and tiny activation
// scales; block counts around the kernels' eight-block steps, row counts
// around their eight-row groups, and rows longer than the VNNI kernels
// take (vnnixMaxBlocks).
func TestQRowsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	for _, dt := range qExactTypes {
		qt, _ := qTypeOf(dt)
		nbs := []int{1, 2, 3, 5}
		if dt == tensor.IQ4_XS {
			nbs = append(nbs, 64, 65) // around rowsIQ4XSAVX2's frame
		}
		if qt.act == actQ8_0 {
			nbs = []int{1, 7, 8, 9, 16, 23, 64, 67, 1030, 1024}
		}
		for k, nb := range nbs {
			cols := nb * dt.BlockSize()
			rb := nb * dt.BlockBytes()
			rows := []int{3, 8, 13, 17}[k%4] // around the eight-row groups
			for wmode := 0; wmode < 4; wmode++ {
				for amode := 0; amode < 4; amode++ {
					for smode := 0; smode < 3; smode++ {
						if nb > 100 && (amode > 0 || smode > 0) {
							continue // long rows: one mode is enough
						}
						w := randBlocks(r, dt, nb*rows, wmode)
						a := exactAct(r, dt, cols, amode, smode)
						want := make([]float32, rows)
						for i := range want {
							want[i] = qt.generic(w[i*rb:(i+1)*rb], a)
						}
						for _, l := range levels() {
							name := fmt.Sprintf("%s/%v nb=%d wmode=%d amode=%d smode=%d", dt, l, nb, wmode, amode, smode)
							dot := qdotFor(l, dt, qt.generic)
							for i := range want {
								if got := dot(w[i*rb:(i+1)*rb], a); !sameFloat(got, want[i]) {
									t.Fatalf("%s: dot row %d = %g (%#x), generic %g (%#x)", name, i, got, math.Float32bits(got), want[i], math.Float32bits(want[i]))
								}
							}
							rowsFn := qrowsFor(l, dt)
							if rowsFn == nil {
								continue
							}
							out := make([]float32, rows+1)
							out[rows] = 42
							rowsFn(out[:rows], w, rb, a)
							for i := range want {
								if !sameFloat(out[i], want[i]) {
									t.Fatalf("%s: rows row %d = %g, generic %g", name, i, out[i], want[i])
								}
							}
							if out[rows] != 42 {
								t.Fatalf("%s: wrote past the rows", name)
							}
						}
					}
				}
			}
		}
	}
}

// TestQDecodeRowsEqualTiles checks the decode routes against each other,
// bit for bit, through MatMul: a one-token call on the row kernels
// (QTileMin 2, the default, and 0) equals the same call on the
// sixteen-row tiles (QTileMin 1) where the level has them, and equals
// each token's result in a batched call (on the tiles, or on the rows
// where there are none): a sequence decoded in a batch gets the logits it
// gets alone. Levels AVX2 and up, one and two threads, a partial last
// tile; weights of every randBlocks mode, tokens of gemmActs' kinds.
func TestQDecodeRowsEqualTiles(t *testing.T) {
	r := rand.New(rand.NewPCG(73, 74))
	defer SetThreads(0)
	const rows, n = 37, 5
	for _, dt := range qExactTypes {
		qt, _ := qTypeOf(dt)
		cols := 2 * qkBlock
		if qt.act == actQ8_0 {
			cols = 9 * q8Block // one eight-block step and a tail
		}
		nb := cols / dt.BlockSize()
		for wmode := 0; wmode < 4; wmode++ {
			data := randBlocks(r, dt, rows*nb, wmode)
			w, err := tensor.New("w", dt, []int{rows, cols}, data)
			if err != nil {
				t.Fatal(err)
			}
			x := gemmActs(r, n, cols)
			for _, l := range levels() {
				if l < levelAVX2 {
					continue
				}
				for th := 1; th <= 2; th++ {
					name := fmt.Sprintf("%s/%v wmode=%d threads=%d", dt, l, wmode, th)
					run := func(tileMin, n int, x []float32) []float32 {
						out := make([]float32, n*rows)
						defer withConfig(func(c *Config) { c.QTileMin, c.Threads, c.QDisabled = tileMin, th, false })()
						withLevel(t, l, func() {
							if err := MatMul(out, x, n, w); err != nil {
								t.Fatal(err)
							}
						})
						return out
					}
					batch := run(2, n, x)
					for tk := 0; tk < n; tk++ {
						xt := x[tk*cols : (tk+1)*cols]
						alone := run(2, 1, xt)
						rowsOnly := run(0, 1, xt)
						tiles := run(1, 1, xt)
						for i := 0; i < rows; i++ {
							got := alone[i]
							if !sameFloat(rowsOnly[i], got) || !sameFloat(tiles[i], got) || !sameFloat(batch[tk*rows+i], got) {
								t.Fatalf("%s: token %d row %d: rows %g, default %g, tiles %g, batched %g",
									name, tk, i, rowsOnly[i], got, tiles[i], batch[tk*rows+i])
							}
						}
					}
				}
			}
		}
	}
}

// TestQTileRouteExact checks the one-token route: rows only for the types
// whose row kernels TestQRowsExact proves exact, tiles for the rest.
func TestQTileRouteExact(t *testing.T) {
	exact := map[tensor.DType]bool{}
	for _, dt := range qExactTypes {
		exact[dt] = true
	}
	cfg := Config{QTileMin: 2}
	for _, dt := range ggml.Types() {
		if exactRowType(dt) && !exact[dt] {
			t.Errorf("%s: exactRowType says exact, but TestQRowsExact does not test it", dt)
		}
		if !qGemmType(dt) || !gemm16For(active, dt).decode() {
			continue
		}
		if got, want := qTileRoute(&cfg, active, dt, 1), !exactRowType(dt); got != want {
			t.Errorf("%s: one token takes the tiles: %v, want %v", dt, got, want)
		}
		if n := max(2, gemm16For(active, dt).minDecode); !qTileRoute(&cfg, active, dt, n) {
			t.Errorf("%s: %d tokens stay off the tiles", dt, n)
		}
	}
}
