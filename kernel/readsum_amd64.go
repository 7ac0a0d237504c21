//go:build amd64 && !purego

package kernel

// Implemented in readsum_amd64.s; len(b) is a multiple of readBlock.

//go:noescape
func readSumAVX2(b []byte) uint64

//go:noescape
func readSumAVX512(b []byte) uint64

func readSum(l level, b []byte) uint64 {
	switch l {
	case levelAVX512:
		return readSumAVX512(b)
	case levelAVX2:
		return readSumAVX2(b)
	}
	return readSumGeneric(b)
}
