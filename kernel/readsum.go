package kernel

import "encoding/binary"

// The read-bandwidth kernel: ReadSum streams a buffer through the widest
// loads the level has and folds it into a checksum, so that a roofline
// probe (package bench) measures memory, not the loop around the loads.

// readBlock is the bytes one SIMD iteration consumes; the SIMD kernels take
// a multiple of it and ReadSum finishes the rest in Go.
const readBlock = 512

// ReadSum returns the sum, modulo 2⁶⁴, of b's little-endian 64-bit words
// plus each of its last len(b) mod 8 bytes. Every level computes the same
// value; what differs is how fast: the SIMD levels read 512 bytes per
// iteration into independent accumulators, so on a large buffer they run at
// the machine's read bandwidth.
func ReadSum(b []byte) uint64 {
	n := len(b) / readBlock * readBlock
	var s uint64
	if n > 0 {
		s = readSum(active, b[:n])
	}
	return s + readSumGeneric(b[n:])
}

// readSumGeneric is ReadSum in plain Go.
func readSumGeneric(b []byte) uint64 {
	var s0, s1, s2, s3 uint64
	i := 0
	for ; i+32 <= len(b); i += 32 {
		s0 += binary.LittleEndian.Uint64(b[i:])
		s1 += binary.LittleEndian.Uint64(b[i+8:])
		s2 += binary.LittleEndian.Uint64(b[i+16:])
		s3 += binary.LittleEndian.Uint64(b[i+24:])
	}
	for ; i+8 <= len(b); i += 8 {
		s0 += binary.LittleEndian.Uint64(b[i:])
	}
	for ; i < len(b); i++ {
		s1 += uint64(b[i])
	}
	return s0 + s1 + s2 + s3
}
