package kmeans

import "fmt"

// PackedBytes is the size of n codes of bits bits each, packed.
func PackedBytes(n, bits int) int { return (n*bits + 7) / 8 }

// PackCodes writes codes (each < 2^bits, bits 1..16) into dst as one
// little-endian bit stream: code i occupies bits [i·bits, (i+1)·bits),
// least significant bit first. dst must hold PackedBytes(len(codes), bits)
// bytes; the unused high bits of the last byte are zero.
func PackCodes(dst []byte, codes []uint16, bits int) {
	var acc uint64
	var nb uint
	p := 0
	for _, c := range codes {
		acc |= uint64(c) << nb
		nb += uint(bits)
		for nb >= 8 {
			dst[p] = byte(acc)
			p++
			acc >>= 8
			nb -= 8
		}
	}
	if nb > 0 {
		dst[p] = byte(acc)
	}
}

// UnpackCodes is the inverse of PackCodes: it fills dst with len(dst)
// codes read from src.
func UnpackCodes(dst []uint16, src []byte, bits int) error {
	if len(src) < PackedBytes(len(dst), bits) {
		return fmt.Errorf("kmeans: %d bytes hold fewer than %d codes of %d bits", len(src), len(dst), bits)
	}
	var acc uint64
	var nb uint
	p := 0
	mask := uint64(1)<<bits - 1
	for i := range dst {
		for nb < uint(bits) {
			acc |= uint64(src[p]) << nb
			p++
			nb += 8
		}
		dst[i] = uint16(acc & mask)
		acc >>= uint(bits)
		nb -= uint(bits)
	}
	return nil
}
