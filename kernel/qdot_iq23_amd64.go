//go:build amd64 && !purego

package kernel

import (
	"fmt"
	"math/bits"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Row dots for the lattice i-quants IQ3_XXS and IQ2_XXS
// (qdot_iq23_amd64.s): AVX2, and equal to the reference dots of quant/ggml
// (dotIQ3XXS, dotIQ2XXS, as ggml_vec_dot_iq{3,2}_xxs_q8_K) bit for bit, for
// every int8 activation (−128 included): the integer block sums are exact
// in vectors and the float32 products and the running sum are the
// reference's, in its order.
//
// The kernels read the lattice grids and the sign masks from the tables
// below: the grids are read back through the reference dequantizer (a
// block whose group scale is exactly 1 yields the grid bytes as its
// values), so they cannot drift from quant/ggml's.

//go:noescape
func dotIQ3XXSAVX2(w []byte, q []int8, d []float32, grid *[256]uint32, signs *[128]uint64) float32

//go:noescape
func dotIQ2XXSAVX2(w []byte, q []int8, d []float32, grid *[256]uint64, signs *[128]uint64) float32

// iqSignMasks[s] holds, in byte j, −1 where element j of a run with
// stored sign bits s (bit 7: the parity of s) is negative, else +1: the
// VPSIGNB operand.
var iqSignMasks = func() *[128]uint64 {
	var t [128]uint64
	for s := range t {
		full := uint(s) | uint(bits.OnesCount8(uint8(s))&1)<<7
		for j := 0; j < 8; j++ {
			m := uint64(0x01)
			if full>>uint(j)&1 != 0 {
				m = 0xff
			}
			t[s] |= m << (8 * uint(j))
		}
	}
	return &t
}()

// latticeGrid reads the grid of lattice type dt (dim magnitudes per entry,
// 256 entries) back from ggml.Dequantize: blocks with binary16 scale d,
// zero sign bits and group scale field 0 (group scale d·0.5·k = 1), whose
// grid indices run through every entry. idx(g, k) is the byte offset in a
// block of group g's k-th grid index.
func latticeGrid(dt tensor.DType, d float32, dim int, idx func(g, k int) int) ([]uint64, error) {
	t, ok := ggml.Lookup(dt)
	if !ok {
		return nil, fmt.Errorf("kernel: %v: no registry entry", dt)
	}
	perGroup := 32 / dim
	perBlock := 8 * perGroup
	grid := make([]uint64, 0, 256)
	blk := make([]byte, t.BlockBytes)
	vals := make([]float32, t.BlockSize)
	for e := 0; e < 256; e += perBlock {
		clear(blk)
		h := tensor.F32ToF16(d)
		blk[0], blk[1] = byte(h), byte(h>>8)
		for g := 0; g < 8; g++ {
			for k := 0; k < perGroup; k++ {
				blk[idx(g, k)] = byte(e + g*perGroup + k)
			}
		}
		if err := ggml.Dequantize(dt, blk, vals); err != nil {
			return nil, fmt.Errorf("kernel: reading the %v grid: %w", dt, err)
		}
		for k := 0; k < perBlock; k++ {
			var p uint64
			for j := 0; j < dim; j++ {
				v := vals[k*dim+j]
				if v < 0 || v > 255 || v != float32(int(v)) {
					return nil, fmt.Errorf("kernel: %v grid entry %d: magnitude %g", dt, e+k, v)
				}
				p |= uint64(v) << (8 * uint(j))
			}
			grid = append(grid, p)
		}
	}
	return grid, nil
}

// iq3xxsGrid and iq2xxsGrid are the grids of IQ3_XXS (group scale
// d·(0.5+ls)·0.5: d = 4) and IQ2_XXS (d·(0.5+ls)·0.25: d = 8); nil if they
// cannot be read (the kernels are then not registered).
var iq3xxsGrid, iq2xxsGrid = func() (*[256]uint32, *[256]uint64) {
	g3, err3 := latticeGrid(tensor.IQ3_XXS, 4, 4, func(g, k int) int { return 2 + 8*g + k })
	g2, err2 := latticeGrid(tensor.IQ2_XXS, 8, 8, func(g, k int) int { return 2 + 8*g + k })
	var t3 *[256]uint32
	var t2 *[256]uint64
	if err3 == nil {
		t3 = new([256]uint32)
		for i, v := range g3 {
			t3[i] = uint32(v)
		}
	}
	if err2 == nil {
		t2 = (*[256]uint64)(g2)
	}
	return t3, t2
}()

func dotIQ3XXSAVX2Row(w []byte, a *q8Act) float32 {
	return dotIQ3XXSAVX2(w, a.Q, a.D, iq3xxsGrid, iqSignMasks)
}

func dotIQ2XXSAVX2Row(w []byte, a *q8Act) float32 {
	return dotIQ2XXSAVX2(w, a.Q, a.D, iq2xxsGrid, iqSignMasks)
}

// init registers the AVX2 row dots of IQ3_XXS and IQ2_XXS.
func init() {
	if iq3xxsGrid != nil {
		registerQKernel(tensor.IQ3_XXS, qKernel{min: levelAVX2, dot: dotIQ3XXSAVX2Row})
	}
	if iq2xxsGrid != nil {
		registerQKernel(tensor.IQ2_XXS, qKernel{min: levelAVX2, dot: dotIQ2XXSAVX2Row})
	}
}
