package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// windowSize is how much the decoder reads from an io.ReaderAt at a time.
const windowSize = 64 << 10

// decoder reads little-endian GGUF fields from memory or an io.ReaderAt,
// never past size. Slices it returns are valid until its next call.
type decoder struct {
	mem  []byte      // the whole input, when in memory
	r    io.ReaderAt // otherwise
	size int64
	off  int64

	win    []byte // buffered bytes of r starting at winOff
	winOff int64
}

// take returns the next n bytes and advances past them.
func (d *decoder) take(n int64) ([]byte, error) {
	if n < 0 || n > d.size-d.off {
		return nil, fmt.Errorf("truncated: need %d bytes at offset %d, input has %d", n, d.off, d.size)
	}
	if d.mem != nil {
		b := d.mem[d.off : d.off+n : d.off+n]
		d.off += n
		return b, nil
	}
	if d.off >= d.winOff && d.off+n <= d.winOff+int64(len(d.win)) {
		s := d.off - d.winOff
		d.off += n
		return d.win[s : s+n], nil
	}
	if n > windowSize {
		b := make([]byte, n)
		if err := readFull(d.r, b, d.off); err != nil {
			return nil, err
		}
		d.off += n
		return b, nil
	}
	m := min(int64(windowSize), d.size-d.off)
	if cap(d.win) < windowSize {
		d.win = make([]byte, windowSize)
	}
	d.win = d.win[:m]
	if err := readFull(d.r, d.win, d.off); err != nil {
		d.win = d.win[:0]
		return nil, err
	}
	d.winOff = d.off
	d.off += n
	return d.win[:n], nil
}

func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading %d bytes at offset %d: %w", len(b), off, err)
}

func (d *decoder) remaining() int64 { return d.size - d.off }

func (d *decoder) u8() (uint8, error) {
	b, err := d.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (d *decoder) u16() (uint16, error) {
	b, err := d.take(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// str reads a length-prefixed string of at most max bytes.
func (d *decoder) str(max int64) (string, error) {
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(max) {
		return "", fmt.Errorf("string length %d exceeds the limit %d", n, max)
	}
	if n > uint64(d.remaining()) {
		return "", fmt.Errorf("string length %d at offset %d runs past the end of the input (%d bytes)", n, d.off-8, d.size)
	}
	b, err := d.take(int64(n))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// value reads one metadata value of type t; depth counts enclosing arrays.
func (d *decoder) value(t ValueType, depth int) (any, error) {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		v, err := d.u8()
		return int8(v), err
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		v, err := d.u16()
		return int16(v), err
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		v, err := d.u32()
		return int32(v), err
	case TypeFloat32:
		v, err := d.u32()
		return math.Float32frombits(v), err
	case TypeBool:
		v, err := d.u8()
		if err != nil {
			return nil, err
		}
		if v > 1 {
			return nil, fmt.Errorf("bool value %d is neither 0 nor 1", v)
		}
		return v == 1, nil
	case TypeString:
		return d.str(maxStringLen)
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		v, err := d.u64()
		return int64(v), err
	case TypeFloat64:
		v, err := d.u64()
		return math.Float64frombits(v), err
	case TypeArray:
		return d.array(depth + 1)
	}
	return nil, fmt.Errorf("unknown value type %d", uint32(t))
}

// maxArrayLen caps one array's element count, beyond fitting in the input.
const maxArrayLen = 1 << 28

// array reads an array value: element type, count, elements.
func (d *decoder) array(depth int) (any, error) {
	if depth > maxArrayNest {
		return nil, fmt.Errorf("arrays nested deeper than %d", maxArrayNest)
	}
	et32, err := d.u32()
	if err != nil {
		return nil, err
	}
	et := ValueType(et32)
	if et > TypeFloat64 {
		return nil, fmt.Errorf("array of unknown value type %d", et32)
	}
	n64, err := d.u64()
	if err != nil {
		return nil, err
	}
	if n64 > maxArrayLen {
		return nil, fmt.Errorf("array of %d %s exceeds the limit %d", n64, et, maxArrayLen)
	}
	if n64*uint64(et.minSize()) > uint64(d.remaining()) {
		return nil, fmt.Errorf("array of %d %s at offset %d runs past the end of the input (%d bytes)", n64, et, d.off-12, d.size)
	}
	n := int(n64)
	if sz := et.size(); sz > 0 {
		b, err := d.take(int64(n * sz))
		if err != nil {
			return nil, err
		}
		return fixedArray(et, b, n)
	}
	switch et {
	case TypeString:
		v := make([]string, n)
		for i := range v {
			if v[i], err = d.str(maxStringLen); err != nil {
				return nil, fmt.Errorf("string array element %d: %w", i, err)
			}
		}
		return v, nil
	default: // TypeArray
		v := make([]any, n)
		for i := range v {
			if v[i], err = d.array(depth + 1); err != nil {
				return nil, fmt.Errorf("array element %d: %w", i, err)
			}
		}
		return v, nil
	}
}

// fixedArray decodes n elements of fixed-size type et from b.
func fixedArray(et ValueType, b []byte, n int) (any, error) {
	le := binary.LittleEndian
	switch et {
	case TypeUint8:
		return append([]uint8(nil), b...), nil
	case TypeInt8:
		v := make([]int8, n)
		for i := range v {
			v[i] = int8(b[i])
		}
		return v, nil
	case TypeBool:
		v := make([]bool, n)
		for i := range v {
			if b[i] > 1 {
				return nil, fmt.Errorf("bool array element %d is %d, neither 0 nor 1", i, b[i])
			}
			v[i] = b[i] == 1
		}
		return v, nil
	case TypeUint16:
		v := make([]uint16, n)
		for i := range v {
			v[i] = le.Uint16(b[2*i:])
		}
		return v, nil
	case TypeInt16:
		v := make([]int16, n)
		for i := range v {
			v[i] = int16(le.Uint16(b[2*i:]))
		}
		return v, nil
	case TypeUint32:
		v := make([]uint32, n)
		for i := range v {
			v[i] = le.Uint32(b[4*i:])
		}
		return v, nil
	case TypeInt32:
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(le.Uint32(b[4*i:]))
		}
		return v, nil
	case TypeFloat32:
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return v, nil
	case TypeUint64:
		v := make([]uint64, n)
		for i := range v {
			v[i] = le.Uint64(b[8*i:])
		}
		return v, nil
	case TypeInt64:
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(le.Uint64(b[8*i:]))
		}
		return v, nil
	case TypeFloat64:
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
		return v, nil
	}
	return nil, fmt.Errorf("unknown value type %d", uint32(et))
}
