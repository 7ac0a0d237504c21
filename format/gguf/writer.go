package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/terse-llm/terse/internal/atomicfile"
	"github.com/terse-llm/terse/tensor"
)

// maxTensorName is the longest tensor name llama.cpp accepts (GGML_MAX_NAME
// is 64 including the terminating NUL).
const maxTensorName = 63

// Write writes a GGUF version 3 file holding meta, in order, and tensors,
// in order. The alignment is meta's general.alignment (a uint32 power of
// two) when present, else 32; each tensor starts at a multiple of it and
// the data section is zero-padded. A tensor with an empty shape is written
// as the one-dimensional shape [1], as ggml does.
func Write(w io.Writer, meta []KV, tensors []*tensor.Tensor) error {
	for _, t := range tensors {
		if err := checkTensor(t); err != nil {
			return fmt.Errorf("gguf write: %w", err)
		}
	}
	return WriteStream(w, meta, tensors, func(i int) ([]byte, error) { return tensors[i].Data, nil })
}

// WriteStream writes a GGUF file as Write does, except that the tensors
// need only their names, types and shapes (Data is ignored): data(i)
// supplies the bytes of tensors[i] when the writer reaches it, in order,
// so a file larger than memory is written one tensor at a time. The slice
// data returns must hold exactly the tensor's ByteSize bytes; the writer
// is done with it when data is next called.
func WriteStream(w io.Writer, meta []KV, tensors []*tensor.Tensor, data func(i int) ([]byte, error)) error {
	align := uint64(DefaultAlignment)
	seen := make(map[string]bool, len(meta))
	for _, kv := range meta {
		if seen[kv.Key] {
			return fmt.Errorf("gguf write: metadata key %q appears twice", kv.Key)
		}
		seen[kv.Key] = true
		if len(kv.Key) > maxNameLen {
			return fmt.Errorf("gguf write: metadata key %.40q... is %d bytes, over the limit %d", kv.Key, len(kv.Key), maxNameLen)
		}
		if err := checkValue(kv.Value, 0); err != nil {
			return fmt.Errorf("gguf write: metadata %q: %w", kv.Key, err)
		}
		if kv.Key == KeyAlignment {
			a, ok := kv.Value.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return fmt.Errorf("gguf write: %s must be a uint32 power of two, have %T %v", KeyAlignment, kv.Value, kv.Value)
			}
			align = uint64(a)
		}
	}

	offsets := make([]uint64, len(tensors))
	var off uint64
	names := make(map[string]bool, len(tensors))
	sizes := make([]int, len(tensors))
	for i, t := range tensors {
		if err := checkHeader(t); err != nil {
			return fmt.Errorf("gguf write: %w", err)
		}
		size, err := t.ByteSize()
		if err != nil {
			return fmt.Errorf("gguf write: tensor %q: %w", t.Name, err)
		}
		sizes[i] = size
		if names[t.Name] {
			return fmt.Errorf("gguf write: tensor %q appears twice", t.Name)
		}
		names[t.Name] = true
		offsets[i] = off
		off += pad(uint64(size), align)
	}

	e := &encoder{w: bufio.NewWriterSize(w, 1<<20)}
	e.bytes([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(meta)))
	for _, kv := range meta {
		e.str(kv.Key)
		t, _, _ := TypeOf(kv.Value)
		e.u32(uint32(t))
		e.value(kv.Value)
	}
	for i, t := range tensors {
		e.str(t.Name)
		shape := t.Shape
		if len(shape) == 0 {
			shape = []int{1}
		}
		e.u32(uint32(len(shape)))
		for j := len(shape) - 1; j >= 0; j-- {
			e.u64(uint64(shape[j]))
		}
		e.u32(uint32(t.DType))
		e.u64(offsets[i])
	}
	e.zeros(pad(e.n, align) - e.n)
	for i, t := range tensors {
		if e.err != nil {
			break
		}
		b, err := data(i)
		if err != nil {
			return fmt.Errorf("gguf write: tensor %q: %w", t.Name, err)
		}
		if len(b) != sizes[i] {
			return fmt.Errorf("gguf write: tensor %q: %s %v needs %d bytes, have %d", t.Name, t.DType, t.Shape, sizes[i], len(b))
		}
		e.bytes(b)
		n := uint64(len(b))
		e.zeros(pad(n, align) - n)
	}
	if e.err != nil {
		return fmt.Errorf("gguf write: %w", e.err)
	}
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("gguf write: %w", err)
	}
	return nil
}

// WriteFile writes a GGUF file to path, as Write does, through a synced
// temporary file in the same folder that is renamed into place on success
// (internal/atomicfile): path never holds a partial file.
func WriteFile(path string, meta []KV, tensors []*tensor.Tensor) error {
	// atomicfile's errors name path; Write's are given it here.
	return atomicfile.WriteFile(path, func(f *atomicfile.File) error {
		if err := Write(f, meta, tensors); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
}

// WriteFileStream writes a GGUF file to path as WriteStream does, through
// a temporary file renamed into place on success, as WriteFile does.
func WriteFileStream(path string, meta []KV, tensors []*tensor.Tensor, data func(i int) ([]byte, error)) error {
	return atomicfile.WriteFile(path, func(f *atomicfile.File) error {
		if err := WriteStream(f, meta, tensors, data); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
}

func pad(n, align uint64) uint64 { return (n + align - 1) / align * align }

// checkTensor validates a tensor for writing.
func checkTensor(t *tensor.Tensor) error {
	if err := checkHeader(t); err != nil {
		return err
	}
	want, err := t.ByteSize()
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if want != len(t.Data) {
		return fmt.Errorf("tensor %q: %s %v needs %d bytes, have %d", t.Name, t.DType, t.Shape, want, len(t.Data))
	}
	return nil
}

// checkHeader validates a tensor's name, type and shape for writing.
func checkHeader(t *tensor.Tensor) error {
	if t == nil {
		return fmt.Errorf("nil tensor")
	}
	if t.Name == "" {
		return fmt.Errorf("tensor with an empty name")
	}
	if len(t.Name) > maxTensorName {
		return fmt.Errorf("tensor %q: name is %d bytes, llama.cpp allows at most %d", t.Name, len(t.Name), maxTensorName)
	}
	if uint32(t.DType) >= 1000 || !t.DType.Known() {
		return fmt.Errorf("tensor %q: type %s has no ggml id", t.Name, t.DType)
	}
	if len(t.Shape) > MaxDims {
		return fmt.Errorf("tensor %q: %d dimensions, at most %d allowed", t.Name, len(t.Shape), MaxDims)
	}
	return nil
}

// checkValue reports a value Write cannot encode.
func checkValue(v any, depth int) error {
	t, _, ok := TypeOf(v)
	if !ok {
		return fmt.Errorf("value of Go type %T has no GGUF type (use a sized integer, float32/64, bool, string or a slice of one)", v)
	}
	switch x := v.(type) {
	case string:
		if len(x) > maxStringLen {
			return fmt.Errorf("string of %d bytes is over the limit %d", len(x), maxStringLen)
		}
	case []string:
		for i, s := range x {
			if len(s) > maxStringLen {
				return fmt.Errorf("element %d: string of %d bytes is over the limit %d", i, len(s), maxStringLen)
			}
		}
	case []any:
		if depth+1 > maxArrayNest {
			return fmt.Errorf("arrays nested deeper than %d", maxArrayNest)
		}
		for i, e := range x {
			if et, _, _ := TypeOf(e); et != TypeArray {
				return fmt.Errorf("element %d: []any may only hold arrays, have %T", i, e)
			}
			if err := checkValue(e, depth+1); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
	}
	if t == TypeArray && arrayLen(v) > maxArrayLen {
		return fmt.Errorf("array of %d elements is over the limit %d", arrayLen(v), maxArrayLen)
	}
	return nil
}

func arrayLen(v any) int {
	switch x := v.(type) {
	case []uint8:
		return len(x)
	case []int8:
		return len(x)
	case []uint16:
		return len(x)
	case []int16:
		return len(x)
	case []uint32:
		return len(x)
	case []int32:
		return len(x)
	case []float32:
		return len(x)
	case []bool:
		return len(x)
	case []string:
		return len(x)
	case []uint64:
		return len(x)
	case []int64:
		return len(x)
	case []float64:
		return len(x)
	case []any:
		return len(x)
	}
	return 0
}

// encoder writes little-endian fields, remembering the first error and the
// byte count.
type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
	buf [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.Write(b)
	e.n += uint64(len(b))
}

func (e *encoder) zeros(n uint64) {
	var z [64]byte
	for n > 0 {
		k := min(n, uint64(len(z)))
		e.bytes(z[:k])
		n -= k
	}
}

func (e *encoder) u8(v uint8) { e.buf[0] = v; e.bytes(e.buf[:1]) }

func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.bytes(e.buf[:2])
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.bytes(e.buf[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.bytes(e.buf[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err != nil {
		return
	}
	_, e.err = e.w.WriteString(s)
	e.n += uint64(len(s))
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// value writes v without its type tag; arrays carry their element type and
// count. v has passed checkValue.
func (e *encoder) value(v any) {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		e.u8(b2u(x))
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	default:
		_, et, _ := TypeOf(v)
		e.u32(uint32(et))
		e.u64(uint64(arrayLen(v)))
		e.array(v)
	}
}

func (e *encoder) array(v any) {
	switch x := v.(type) {
	case []uint8:
		e.bytes(x)
	case []int8:
		for _, y := range x {
			e.u8(uint8(y))
		}
	case []uint16:
		for _, y := range x {
			e.u16(y)
		}
	case []int16:
		for _, y := range x {
			e.u16(uint16(y))
		}
	case []uint32:
		for _, y := range x {
			e.u32(y)
		}
	case []int32:
		for _, y := range x {
			e.u32(uint32(y))
		}
	case []float32:
		for _, y := range x {
			e.u32(math.Float32bits(y))
		}
	case []bool:
		for _, y := range x {
			e.u8(b2u(y))
		}
	case []string:
		for _, y := range x {
			e.str(y)
		}
	case []uint64:
		for _, y := range x {
			e.u64(y)
		}
	case []int64:
		for _, y := range x {
			e.u64(uint64(y))
		}
	case []float64:
		for _, y := range x {
			e.u64(math.Float64bits(y))
		}
	case []any:
		for _, y := range x {
			e.value(y)
		}
	}
}
