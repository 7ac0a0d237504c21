package ggml

// Shared pieces of ggml's lattice types (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
// IQ3_S; IQ1_S and IQ1_M share iq1sGrid in iq1_s.go).
//
// Those types code each group of 8 weights as one point of a lattice
// codebook: a grid entry packs 8 (IQ2_*) or 4 (IQ3_*) unsigned magnitudes,
// one per byte, least significant byte first, and a separate sign byte
// says which of the 8 are negative (bit j set: element j is negated).
// IQ2_XXS, IQ2_XS and IQ3_XXS store only 7 sign bits per group and take
// the eighth from parity: the number of negative elements is always even,
// and iqSigns maps the 7 stored bits to the full sign byte (bit 7 set when
// the stored bits have odd parity). IQ2_S and IQ3_S store all 8 bits.

// iqSigns is ggml's ksigns_iq2xs: iqSigns[s] = s | parity(s)<<7.
var iqSigns = [128]uint8{
	0, 129, 130, 3, 132, 5, 6, 135, 136, 9, 10, 139, 12, 141, 142, 15,
	144, 17, 18, 147, 20, 149, 150, 23, 24, 153, 154, 27, 156, 29, 30, 159,
	160, 33, 34, 163, 36, 165, 166, 39, 40, 169, 170, 43, 172, 45, 46, 175,
	48, 177, 178, 51, 180, 53, 54, 183, 184, 57, 58, 187, 60, 189, 190, 63,
	192, 65, 66, 195, 68, 197, 198, 71, 72, 201, 202, 75, 204, 77, 78, 207,
	80, 209, 210, 83, 212, 85, 86, 215, 216, 89, 90, 219, 92, 221, 222, 95,
	96, 225, 226, 99, 228, 101, 102, 231, 232, 105, 106, 235, 108, 237, 238, 111,
	240, 113, 114, 243, 116, 245, 246, 119, 120, 249, 250, 123, 252, 125, 126, 255,
}

// gridByte returns byte j (0 = least significant) of a grid entry.
func gridByte(g uint64, j int) uint8 { return uint8(g >> (8 * uint(j))) }

// signOf returns -1 if bit j of signs is set, else 1, as float32.
func signOf(signs uint8, j int) float32 {
	if signs>>uint(j)&1 != 0 {
		return -1
	}
	return 1
}

// isignOf is signOf as an int32, for the integer dot products.
func isignOf(signs uint8, j int) int32 {
	if signs>>uint(j)&1 != 0 {
		return -1
	}
	return 1
}
