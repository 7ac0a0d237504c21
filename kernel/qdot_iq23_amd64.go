//go:build amd64 && !purego

package kernel

import (
	"fmt"
	"math/bits"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Row dots for the lattice i-quants IQ3_XXS, IQ2_XXS, IQ2_XS, IQ3_S, IQ2_S,
// IQ1_S and IQ1_M (qdot_iq23_amd64.s): AVX2, and equal to the reference
// dots of quant/ggml (dotIQ3XXS, dotIQ2XXS, dotIQ2XS, dotIQ3S, dotIQ2S,
// dotIQ1S, dotIQ1M: ggml's
// vec_dot of each type with q8_K) bit for bit, for every int8 activation
// (−128 included): the integer block sums are exact in vectors and the
// float32 products and the running sum are the reference's, in its order.
//
// The kernels read the lattice grids and the sign masks from the tables
// below: the grids are read back through the reference dequantizer (a
// block whose group scale is exactly 1 yields the grid bytes as its
// values), so they cannot drift from quant/ggml's.

//go:noescape
func dotIQ3XXSAVX2(w []byte, q []int8, d []float32, grid *[256]uint32, signs *[128]uint64) float32

//go:noescape
func dotIQ3SAVX2(w []byte, q []int8, d []float32, grid *[512]uint32) float32

//go:noescape
func dotIQ2SAVX2(w []byte, q []int8, d []float32, grid *[1024]uint64) float32

//go:noescape
func dotIQ1SAVX2(w []byte, q []int8, d []float32, bs []int16, grid *[2048]uint64) float32

//go:noescape
func dotIQ1MAVX2(w []byte, q []int8, d []float32, grid *[2048]uint64) float32

//go:noescape
func dotIQ2XSAVX2(w []byte, q []int8, d []float32, grid *[512]uint64) float32

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

// latticeGrid reads the n-entry grid of lattice type dt (dim magnitudes
// per entry) back from ggml.Dequantize: blocks with binary16 scale d, zero
// sign bits and zero group scale fields (group scale d·0.5·k = 1), whose
// grid indices run through every entry; each value plus off (which must
// make it a byte) is the entry's byte. per is the grid indices a group of
// 32 holds, and set(blk, g, k, e) stores e as group g's k-th index.
func latticeGrid(dt tensor.DType, n int, d, off float32, dim, per int, set func(blk []byte, g, k, e int)) ([]uint64, error) {
	t, ok := ggml.Lookup(dt)
	if !ok {
		return nil, fmt.Errorf("kernel: %v: no registry entry", dt)
	}
	perBlock := 8 * per
	grid := make([]uint64, 0, n)
	blk := make([]byte, t.BlockBytes)
	vals := make([]float32, t.BlockSize)
	for e := 0; e < n; e += perBlock {
		clear(blk)
		h := tensor.F32ToF16(d)
		blk[0], blk[1] = byte(h), byte(h>>8)
		for g := 0; g < 8; g++ {
			for k := 0; k < per; k++ {
				set(blk, g, k, e+g*per+k)
			}
		}
		if err := ggml.Dequantize(dt, blk, vals); err != nil {
			return nil, fmt.Errorf("kernel: reading the %v grid: %w", dt, err)
		}
		for k := 0; k < perBlock; k++ {
			var p uint64
			for j := 0; j < dim; j++ {
				v := vals[k*dim+j] + off
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

// setByteIndex stores grid index e as byte k of group g (IQ3_XXS,
// IQ2_XXS: 8 bytes per group from offset 2).
func setByteIndex(blk []byte, g, k, e int) { blk[2+8*g+k] = byte(e) }

// setIQ3SIndex stores grid index e as group g's k-th index of an IQ3_S
// block: the low byte in qs, bit 8 as bit k of the group's qh byte.
func setIQ3SIndex(blk []byte, g, k, e int) {
	blk[2+8*g+k] = byte(e)
	blk[66+g] |= byte(e>>8) << uint(k)
}

// setIQ2SIndex stores grid index e as group g's k-th index of an IQ2_S
// block: the low byte in qs, bits 8..9 as bits 2k..2k+1 of the group's qh
// byte.
func setIQ2SIndex(blk []byte, g, k, e int) {
	blk[2+4*g+k] = byte(e)
	blk[66+g] |= byte(e>>8) << (2 * uint(k))
}

// setIQ1SIndex stores grid index e as group g's k-th index of an IQ1_S
// block: the low byte in qs, bits 8..10 as bits 3k..3k+2 of the group's
// qh word.
func setIQ1SIndex(blk []byte, g, k, e int) {
	blk[2+4*g+k] = byte(e)
	h := uint16(blk[34+2*g]) | uint16(blk[35+2*g])<<8 | uint16(e>>8)<<(3*uint(k))
	blk[34+2*g], blk[35+2*g] = byte(h), byte(h>>8)
}

// iq1sGridPlus1 is IQ1_S's grid (values −1, 0, 1) with 1 added to each
// byte, read with d = 1 and group scale field 0 (dl = 1) and the shift
// +1/8: a value v reads v + 1/8, so off = 7/8. nil where it cannot be read.
var iq1sGridPlus1 = func() *[2048]uint64 {
	g, err := latticeGrid(tensor.IQ1_S, 2048, 1, 0.875, 8, 4, setIQ1SIndex)
	if err != nil {
		return nil
	}
	return (*[2048]uint64)(g)
}()

// setWordIndex stores grid index e as the k-th little-endian uint16 of
// group g (IQ2_XS), sign bits zero.
func setWordIndex(blk []byte, g, k, e int) {
	blk[2+8*g+2*k], blk[3+8*g+2*k] = byte(e), byte(e>>8)
}

// iq3xxsGrid, iq2xxsGrid, iq2xsGrid, iq3sGrid and iq2sGrid are the grids
// of IQ3_XXS (group scale d·(0.5+ls)·0.5: d = 4), IQ2_XXS, IQ2_XS and
// IQ2_S (d·(0.5+ls)·0.25: d = 8) and IQ3_S (d·(1+2·ls): d = 1); nil where
// they cannot be read (their kernels are then not registered).
var iq3xxsGrid, iq2xxsGrid, iq2xsGrid, iq3sGrid, iq2sGrid = func() (*[256]uint32, *[256]uint64, *[512]uint64, *[512]uint32, *[1024]uint64) {
	var t2S *[1024]uint64
	var t3 *[256]uint32
	var t3s *[512]uint32
	var t2 *[256]uint64
	var t2s *[512]uint64
	if g, err := latticeGrid(tensor.IQ3_XXS, 256, 4, 0, 4, 8, setByteIndex); err == nil {
		t3 = new([256]uint32)
		for i, v := range g {
			t3[i] = uint32(v)
		}
	}
	if g, err := latticeGrid(tensor.IQ2_XXS, 256, 8, 0, 8, 4, setByteIndex); err == nil {
		t2 = (*[256]uint64)(g)
	}
	if g, err := latticeGrid(tensor.IQ2_XS, 512, 8, 0, 8, 4, setWordIndex); err == nil {
		t2s = (*[512]uint64)(g)
	}
	if g, err := latticeGrid(tensor.IQ3_S, 512, 1, 0, 4, 8, setIQ3SIndex); err == nil {
		t3s = new([512]uint32)
		for i, v := range g {
			t3s[i] = uint32(v)
		}
	}
	if g, err := latticeGrid(tensor.IQ2_S, 1024, 8, 0, 8, 4, setIQ2SIndex); err == nil {
		t2S = (*[1024]uint64)(g)
	}
	return t3, t2, t2s, t3s, t2S
}()

func dotIQ3XXSAVX2Row(w []byte, a *q8Act) float32 {
	return dotIQ3XXSAVX2(w, a.Q, a.D, iq3xxsGrid, iqSignMasks)
}

func dotIQ2XXSAVX2Row(w []byte, a *q8Act) float32 {
	return dotIQ2XXSAVX2(w, a.Q, a.D, iq2xxsGrid, iqSignMasks)
}

func dotIQ2XSAVX2Row(w []byte, a *q8Act) float32 {
	return dotIQ2XSAVX2(w, a.Q, a.D, iq2xsGrid)
}

func dotIQ3SAVX2Row(w []byte, a *q8Act) float32 { return dotIQ3SAVX2(w, a.Q, a.D, iq3sGrid) }

func dotIQ2SAVX2Row(w []byte, a *q8Act) float32 { return dotIQ2SAVX2(w, a.Q, a.D, iq2sGrid) }

func dotIQ1SAVX2Row(w []byte, a *q8Act) float32 {
	return dotIQ1SAVX2(w, a.Q, a.D, a.BS, iq1sGridPlus1)
}

func dotIQ1MAVX2Row(w []byte, a *q8Act) float32 { return dotIQ1MAVX2(w, a.Q, a.D, iq1sGridPlus1) }

// init registers the AVX2 row dots of the lattice types (IQ1_M shares
// IQ1_S's grid).
func init() {
	if iq1sGridPlus1 != nil {
		registerQKernel(tensor.IQ1_M, qKernel{min: levelAVX2, dot: dotIQ1MAVX2Row})
	}
	if iq1sGridPlus1 != nil {
		registerQKernel(tensor.IQ1_S, qKernel{min: levelAVX2, dot: dotIQ1SAVX2Row})
	}
	if iq2sGrid != nil {
		registerQKernel(tensor.IQ2_S, qKernel{min: levelAVX2, dot: dotIQ2SAVX2Row})
	}
	if iq3sGrid != nil {
		registerQKernel(tensor.IQ3_S, qKernel{min: levelAVX2, dot: dotIQ3SAVX2Row})
	}
	if iq2xsGrid != nil {
		registerQKernel(tensor.IQ2_XS, qKernel{min: levelAVX2, dot: dotIQ2XSAVX2Row})
	}
	if iq3xxsGrid != nil {
		registerQKernel(tensor.IQ3_XXS, qKernel{min: levelAVX2, dot: dotIQ3XXSAVX2Row})
	}
	if iq2xxsGrid != nil {
		registerQKernel(tensor.IQ2_XXS, qKernel{min: levelAVX2, dot: dotIQ2XXSAVX2Row})
	}
}
