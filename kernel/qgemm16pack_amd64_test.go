//go:build amd64 && !purego

package kernel

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// TestPackLegacyAVX2 checks the AVX2 repackings of the legacy types
// against packLegacy4x16 byte for byte, on rows of random and extreme
// blocks (randBlocks' modes) a row stride longer than the blocks apart.
func TestPackLegacyAVX2(t *testing.T) {
	if supported < levelAVX2 {
		t.Skipf("no AVX2 on this CPU (level %v)", supported)
	}
	r := rand.New(rand.NewPCG(6, 0))
	for _, tc := range []struct {
		dt   tensor.DType
		pack func(dst, w []byte, rb, nb int)
	}{
		{tensor.IQ4_NL, pack16IQ4_NLAVX2},
		{tensor.Q5_0, pack16Q5_0AVX2},
		{tensor.Q4_1, pack16Q4_1AVX2},
		{tensor.Q5_1, pack16Q5_1AVX2},
	} {
		const rows, cols = 16, 256
		nb := cols / q8Block
		rb, _ := tc.dt.RowBytes(cols)
		stride := rb + 3 // rows further apart than their length
		tile := pack16Q8_0
		if tc.dt == tensor.Q4_1 || tc.dt == tensor.Q5_1 {
			tile = pack16Q4_1
		}
		for wmode := 0; wmode < 4; wmode++ {
			blocks := randBlocks(r, tc.dt, rows*nb, wmode)
			data := make([]byte, rows*stride)
			for i := 0; i < rows; i++ {
				copy(data[i*stride:], blocks[i*rb:(i+1)*rb])
			}
			got := make([]byte, nb*tile)
			tc.pack(got, data, stride, nb)
			want := make([]byte, len(got))
			packLegacy4x16(tc.dt, want, data, stride, nb)
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("%s wmode=%d: byte %d is %#x, packLegacy4x16 %#x", tc.dt, wmode, i, got[i], want[i])
			}
		}
	}
}

// firstDiff is the first index where a and b differ, or -1.
func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}
