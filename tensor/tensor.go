package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Tensor is a named, shaped block of elements as stored. Data may alias a
// memory-mapped file and must then be treated as read-only.
type Tensor struct {
	Name  string
	DType DType
	Shape []int // outermost first; the last dimension is contiguous
	Data  []byte
	// Decoder, when set, rebuilds the rows of a DType Codebook tensor,
	// which has no Data of its own (see codec.go).
	Decoder RowDecoder
}

// New checks that data holds exactly the elements shape and dtype call for
// and returns the tensor.
func New(name string, dt DType, shape []int, data []byte) (*Tensor, error) {
	t := &Tensor{Name: name, DType: dt, Shape: shape, Data: data}
	want, err := t.ByteSize()
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	if want != len(data) {
		return nil, fmt.Errorf("tensor %q: %s %v needs %d bytes, have %d", name, dt, shape, want, len(data))
	}
	return t, nil
}

// NumElements is the product of the shape (1 for a scalar).
func (t *Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Cols is the length of the contiguous last dimension.
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

// Rows is the number of contiguous rows (all dimensions but the last).
func (t *Tensor) Rows() int {
	c := t.Cols()
	if c == 0 {
		return 0
	}
	return t.NumElements() / c
}

// RowBytes is the stored size of one row.
func (t *Tensor) RowBytes() int {
	n, _ := t.DType.RowBytes(t.Cols())
	return n
}

// Row returns the stored bytes of row i.
func (t *Tensor) Row(i int) []byte {
	rb := t.RowBytes()
	return t.Data[i*rb : (i+1)*rb]
}

// ByteSize is the stored size implied by shape and dtype.
func (t *Tensor) ByteSize() (int, error) {
	for _, d := range t.Shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", t.Shape)
		}
	}
	rb, err := t.DType.RowBytes(t.Cols())
	if err != nil {
		return 0, err
	}
	return rb * t.Rows(), nil
}

// FromFloat32 builds an F32 tensor that owns a copy of v.
func FromFloat32(name string, shape []int, v []float32) *Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return &Tensor{Name: name, DType: F32, Shape: append([]int(nil), shape...), Data: b}
}
