package tensor

// RowDecoder produces the rows of a matrix whose storage is not a fixed
// per-element type: codebook (k-means, vector) quantization, where a row
// is rebuilt from packed codes and shared codebooks. A Tensor whose
// Decoder is set has DType Codebook and no Data; the kernels and the
// embedding lookup decode one row at a time into their own scratch.
//
// Implementations must be safe for concurrent calls with different dst.
type RowDecoder interface {
	// DecodeRow writes row row (len(dst) = the tensor's column count) as
	// float32.
	DecodeRow(row int, dst []float32) error
	// Bits is the storage cost in bits per weight, codebooks and scales
	// included.
	Bits() float64
}

// NewCoded returns a Codebook tensor of the given [rows, cols] shape
// whose rows come from d.
func NewCoded(name string, shape []int, d RowDecoder) *Tensor {
	return &Tensor{Name: name, DType: Codebook, Shape: append([]int(nil), shape...), Decoder: d}
}

// Codebook tensors have blocks of one element and zero bytes: their size
// lives in the Decoder.
func init() { types[Codebook] = typeInfo{"Codebook", 1, 0} }
