// Package tensor holds the dense tensor type shared by every part of terse:
// a name, a shape, an element type and the bytes as they are stored (often a
// slice of a memory-mapped file). It also holds the element types, including
// ggml's block-quantized ones, and the half-precision conversions.
//
// Shapes are outermost-first (row-major): a weight matrix that maps a vector
// of length in to one of length out has Shape [out, in], each row contiguous.
// GGUF stores the reverse order (ne[0] is the contiguous row length); the gguf
// package converts.
package tensor

import "fmt"

// DType is an element type. Values below 1000 are ggml's own type ids, so a
// DType read from or written to GGUF needs no table.
type DType uint32

// Element types. The ggml ids are fixed by the GGUF specification.
const (
	F32     DType = 0
	F16     DType = 1
	Q4_0    DType = 2
	Q4_1    DType = 3
	Q5_0    DType = 6
	Q5_1    DType = 7
	Q8_0    DType = 8
	Q8_1    DType = 9
	Q2_K    DType = 10
	Q3_K    DType = 11
	Q4_K    DType = 12
	Q5_K    DType = 13
	Q6_K    DType = 14
	Q8_K    DType = 15
	IQ2_XXS DType = 16
	IQ2_XS  DType = 17
	IQ3_XXS DType = 18
	IQ1_S   DType = 19
	IQ4_NL  DType = 20
	IQ3_S   DType = 21
	IQ2_S   DType = 22
	IQ4_XS  DType = 23
	I8      DType = 24
	I16     DType = 25
	I32     DType = 26
	I64     DType = 27
	F64     DType = 28
	IQ1_M   DType = 29
	BF16    DType = 30
	TQ1_0   DType = 34
	TQ2_0   DType = 35

	// U8 has no ggml id; it exists for safetensors.
	U8 DType = 1000
	// Codebook marks a tensor whose rows come from its Decoder (codebook
	// and vector quantization); it has no stored bytes of its own.
	Codebook DType = 1001
)

type typeInfo struct {
	name       string
	blockSize  int // elements per block
	blockBytes int // bytes per block
}

var types = map[DType]typeInfo{
	F32:     {"F32", 1, 4},
	F16:     {"F16", 1, 2},
	BF16:    {"BF16", 1, 2},
	F64:     {"F64", 1, 8},
	I8:      {"I8", 1, 1},
	U8:      {"U8", 1, 1},
	I16:     {"I16", 1, 2},
	I32:     {"I32", 1, 4},
	I64:     {"I64", 1, 8},
	Q4_0:    {"Q4_0", 32, 18},
	Q4_1:    {"Q4_1", 32, 20},
	Q5_0:    {"Q5_0", 32, 22},
	Q5_1:    {"Q5_1", 32, 24},
	Q8_0:    {"Q8_0", 32, 34},
	Q8_1:    {"Q8_1", 32, 36},
	Q2_K:    {"Q2_K", 256, 84},
	Q3_K:    {"Q3_K", 256, 110},
	Q4_K:    {"Q4_K", 256, 144},
	Q5_K:    {"Q5_K", 256, 176},
	Q6_K:    {"Q6_K", 256, 210},
	Q8_K:    {"Q8_K", 256, 292},
	IQ2_XXS: {"IQ2_XXS", 256, 66},
	IQ2_XS:  {"IQ2_XS", 256, 74},
	IQ3_XXS: {"IQ3_XXS", 256, 98},
	IQ1_S:   {"IQ1_S", 256, 50},
	IQ4_NL:  {"IQ4_NL", 32, 18},
	IQ3_S:   {"IQ3_S", 256, 110},
	IQ2_S:   {"IQ2_S", 256, 82},
	IQ4_XS:  {"IQ4_XS", 256, 136},
	IQ1_M:   {"IQ1_M", 256, 56},
	TQ1_0:   {"TQ1_0", 256, 54},
	TQ2_0:   {"TQ2_0", 256, 66},
}

// Known reports whether t is a type this package can size.
func (t DType) Known() bool { _, ok := types[t]; return ok }

// String returns the type's ggml name ("Q4_K", "BF16"), or "DType(n)".
func (t DType) String() string {
	if ti, ok := types[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("DType(%d)", uint32(t))
}

// BlockSize is the number of elements in one block (1 for plain types).
func (t DType) BlockSize() int { return types[t].blockSize }

// BlockBytes is the number of bytes one block occupies.
func (t DType) BlockBytes() int { return types[t].blockBytes }

// Quantized reports whether t is a block-quantized ggml type.
func (t DType) Quantized() bool { return types[t].blockSize > 1 }

// Float reports whether t is F32, F16 or BF16.
func (t DType) Float() bool { return t == F32 || t == F16 || t == BF16 }

// BitsPerWeight is the storage cost of one element in bits.
func (t DType) BitsPerWeight() float64 {
	ti, ok := types[t]
	if !ok {
		return 0
	}
	return float64(ti.blockBytes*8) / float64(ti.blockSize)
}

// RowBytes returns the bytes taken by n elements of type t, or an error when
// n is not a whole number of blocks or the type is unknown.
func (t DType) RowBytes(n int) (int, error) {
	ti, ok := types[t]
	if !ok {
		return 0, fmt.Errorf("unknown element type %d", uint32(t))
	}
	if n < 0 || n%ti.blockSize != 0 {
		return 0, fmt.Errorf("%s: %d elements is not a multiple of the block size %d", ti.name, n, ti.blockSize)
	}
	return n / ti.blockSize * ti.blockBytes, nil
}

// ParseDType maps a ggml type name ("q4_k", "BF16") to its DType.
func ParseDType(name string) (DType, error) {
	for t, ti := range types {
		if equalFold(ti.name, name) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown element type %q", name)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
