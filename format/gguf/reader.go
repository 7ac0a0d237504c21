package gguf

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"

	"github.com/terse-llm/terse/internal/mmap"
	"github.com/terse-llm/terse/tensor"
)

// Header limits. A count must also fit in the bytes left in the input at
// the smallest size one entry can take.
const (
	maxTensors = 1 << 20
	maxKVs     = 1 << 20

	minKVBytes     = 8 + 4 + 1     // empty key, type, one-byte value
	minTensorBytes = 8 + 4 + 4 + 8 // empty name, n_dims 0, type, offset
)

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	Name  string
	DType tensor.DType
	// Shape is outermost-first: the reverse of GGUF's ne, so the last
	// dimension is the contiguous one.
	Shape []int
	// Offset is the tensor's position relative to the data section
	// (File.DataOffset); Size is its length in bytes.
	Offset int64
	Size   int64
}

// NumElements is the product of the shape.
func (ti *TensorInfo) NumElements() int {
	n := 1
	for _, d := range ti.Shape {
		n *= d
	}
	return n
}

// File is a parsed GGUF file. Tensor data stays in the file (memory-mapped
// by Open) and is read on request.
type File struct {
	// Path is the file's path, or "" for input parsed from memory or an
	// io.ReaderAt.
	Path    string
	Version uint32
	// Metadata maps each key to its value, typed as KV documents.
	Metadata map[string]any
	// Keys lists the metadata keys in file order.
	Keys []string
	// Alignment is the data alignment (general.alignment or 32).
	Alignment int
	// Tensors lists the tensors in file order.
	Tensors []TensorInfo
	// DataOffset is where the data section starts; Size is the input size.
	DataOffset int64
	Size       int64

	byName map[string]int
	mem    []byte      // whole input, when in memory or mapped
	r      io.ReaderAt // otherwise
	unmap  func() error
	closed bool
}

// Open memory-maps (read-only, through internal/mmap) and parses the GGUF
// file at path. Tensors returned by the File alias the mapping and are valid
// until Close.
func Open(path string) (*File, error) {
	m, err := mmap.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	mem := m.Data()
	gf, err := parse(path, &decoder{mem: mem, size: int64(len(mem))})
	if err != nil {
		m.Close()
		return nil, err
	}
	gf.mem = mem
	gf.unmap = m.Close
	return gf, nil
}

// Parse parses a GGUF file held in data. Tensors returned by the File alias
// data.
func Parse(data []byte) (*File, error) {
	gf, err := parse("", &decoder{mem: data, size: int64(len(data))})
	if err != nil {
		return nil, err
	}
	gf.mem = data
	return gf, nil
}

// ParseReaderAt parses a GGUF file of size bytes read through r. Tensor
// reads their data from r into new memory.
func ParseReaderAt(r io.ReaderAt, size int64) (*File, error) {
	if size < 0 {
		return nil, fmt.Errorf("gguf: negative size %d", size)
	}
	gf, err := parse("", &decoder{r: r, size: size})
	if err != nil {
		return nil, err
	}
	gf.r = r
	return gf, nil
}

// displayName is how errors refer to the input.
func displayName(path string) string {
	if path == "" {
		return "(input)"
	}
	return path
}

func parse(path string, d *decoder) (*File, error) {
	name := displayName(path)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("gguf %s: "+format, append([]any{name}, args...)...)
	}
	magic, err := d.take(4)
	if err != nil {
		return nil, fail("header: %w", err)
	}
	if string(magic) != Magic {
		return nil, fail("bad magic %q, not a GGUF file", magic)
	}
	version, err := d.u32()
	if err != nil {
		return nil, fail("header: %w", err)
	}
	switch {
	case version == 2 || version == 3:
	case version == 1:
		return nil, fail("GGUF version 1 is not supported; convert the file with a current llama.cpp")
	case bits.ReverseBytes32(version) == 2 || bits.ReverseBytes32(version) == 3:
		return nil, fail("big-endian GGUF is not supported")
	default:
		return nil, fail("unsupported GGUF version %d", version)
	}
	nTensors, err := d.u64()
	if err != nil {
		return nil, fail("header: %w", err)
	}
	nKV, err := d.u64()
	if err != nil {
		return nil, fail("header: %w", err)
	}
	if nKV > maxKVs || nKV > uint64(d.remaining()/minKVBytes) {
		return nil, fail("header claims %d metadata entries, more than the file can hold", nKV)
	}
	if nTensors > maxTensors || nTensors > uint64(d.remaining()/minTensorBytes) {
		return nil, fail("header claims %d tensors, more than the file can hold", nTensors)
	}

	gf := &File{
		Path:      path,
		Version:   version,
		Metadata:  make(map[string]any, min(nKV, 1024)),
		Keys:      make([]string, 0, min(nKV, 1024)),
		Alignment: DefaultAlignment,
		Size:      d.size,
	}
	for i := 0; i < int(nKV); i++ {
		at := d.off
		key, err := d.str(maxNameLen)
		if err != nil {
			return nil, fail("metadata entry %d at offset %d: key: %w", i, at, err)
		}
		if _, dup := gf.Metadata[key]; dup {
			return nil, fail("metadata key %q appears twice", key)
		}
		t, err := d.u32()
		if err != nil {
			return nil, fail("metadata %q: %w", key, err)
		}
		v, err := d.value(ValueType(t), 0)
		if err != nil {
			return nil, fail("metadata %q: %w", key, err)
		}
		gf.Metadata[key] = v
		gf.Keys = append(gf.Keys, key)
	}
	if v, ok := gf.Metadata[KeyAlignment]; ok {
		a, ok := v.(uint32)
		if !ok {
			return nil, fail("%s is %T, want uint32", KeyAlignment, v)
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, fail("%s = %d is not a power of two", KeyAlignment, a)
		}
		gf.Alignment = int(a)
	}

	gf.Tensors = make([]TensorInfo, 0, min(nTensors, 1024))
	gf.byName = make(map[string]int, min(nTensors, 1024))
	for i := 0; i < int(nTensors); i++ {
		at := d.off
		ti, err := readTensorInfo(d)
		if err != nil {
			if ti.Name != "" {
				return nil, fail("tensor %q: %w", ti.Name, err)
			}
			return nil, fail("tensor info %d at offset %d: %w", i, at, err)
		}
		if _, dup := gf.byName[ti.Name]; dup {
			return nil, fail("tensor %q appears twice", ti.Name)
		}
		gf.byName[ti.Name] = len(gf.Tensors)
		gf.Tensors = append(gf.Tensors, ti)
	}

	align := int64(gf.Alignment)
	gf.DataOffset = (d.off + align - 1) / align * align
	if len(gf.Tensors) > 0 && gf.DataOffset > d.size {
		return nil, fail("data section at offset %d starts past the end of the file (%d bytes)", gf.DataOffset, d.size)
	}
	dataLen := max(d.size-gf.DataOffset, 0)
	for i := range gf.Tensors {
		ti := &gf.Tensors[i]
		if ti.Offset%align != 0 {
			return nil, fail("tensor %q: offset %d is not a multiple of the alignment %d", ti.Name, ti.Offset, align)
		}
		if ti.Offset > dataLen || ti.Size > dataLen-ti.Offset {
			return nil, fail("tensor %q: %d bytes at data offset %d run past the end of the file (data section holds %d bytes)", ti.Name, ti.Size, ti.Offset, dataLen)
		}
	}
	if err := checkOverlap(gf.Tensors); err != nil {
		return nil, fail("%w", err)
	}
	return gf, nil
}

// readTensorInfo reads one tensor info; on error the returned info carries
// the name when it was read.
func readTensorInfo(d *decoder) (TensorInfo, error) {
	var ti TensorInfo
	name, err := d.str(maxNameLen)
	if err != nil {
		return ti, fmt.Errorf("name: %w", err)
	}
	ti.Name = name
	nd, err := d.u32()
	if err != nil {
		return ti, err
	}
	if nd > MaxDims {
		return ti, fmt.Errorf("%d dimensions, at most %d allowed", nd, MaxDims)
	}
	var ne [MaxDims]uint64
	elems := uint64(1)
	for j := 0; j < int(nd); j++ {
		if ne[j], err = d.u64(); err != nil {
			return ti, err
		}
		if ne[j] > math.MaxInt64 {
			return ti, fmt.Errorf("dimension %d is negative (%d)", j, int64(ne[j]))
		}
		if ne[j] > math.MaxInt {
			return ti, fmt.Errorf("dimension %d (%d) is too large for this platform", j, ne[j])
		}
		hi, lo := bits.Mul64(elems, ne[j])
		if hi != 0 || lo > math.MaxInt64 {
			return ti, fmt.Errorf("shape %v overflows the element count", ne[:nd])
		}
		elems = lo
	}
	t, err := d.u32()
	if err != nil {
		return ti, err
	}
	dt := tensor.DType(t)
	if t >= 1000 || !dt.Known() {
		return ti, fmt.Errorf("unknown ggml type %d", t)
	}
	ti.DType = dt
	off, err := d.u64()
	if err != nil {
		return ti, err
	}
	if off > math.MaxInt64 {
		return ti, fmt.Errorf("offset %d is out of range", off)
	}
	ti.Offset = int64(off)

	row := uint64(1)
	if nd > 0 {
		row = ne[0]
	}
	bs := uint64(dt.BlockSize())
	if row%bs != 0 {
		return ti, fmt.Errorf("%s row length %d is not a multiple of the block size %d", dt, row, bs)
	}
	var size uint64
	if row > 0 {
		hi, lo := bits.Mul64(elems/bs, uint64(dt.BlockBytes()))
		if hi != 0 || lo > math.MaxInt64 || elems > math.MaxInt {
			return ti, fmt.Errorf("%s %v is too large", dt, ne[:nd])
		}
		size = lo
	}
	ti.Size = int64(size)
	ti.Shape = make([]int, nd)
	for j := 0; j < int(nd); j++ {
		ti.Shape[int(nd)-1-j] = int(ne[j])
	}
	return ti, nil
}

// checkOverlap reports two tensors whose bytes overlap.
func checkOverlap(ts []TensorInfo) error {
	idx := make([]int, 0, len(ts))
	for i := range ts {
		if ts[i].Size > 0 {
			idx = append(idx, i)
		}
	}
	sort.Slice(idx, func(a, b int) bool { return ts[idx[a]].Offset < ts[idx[b]].Offset })
	for k := 1; k < len(idx); k++ {
		p, c := &ts[idx[k-1]], &ts[idx[k]]
		if p.Offset+p.Size > c.Offset {
			return fmt.Errorf("tensors %q (data offset %d, %d bytes) and %q (data offset %d) overlap", p.Name, p.Offset, p.Size, c.Name, c.Offset)
		}
	}
	return nil
}

// errClosed is returned for tensor reads after Close.
var errClosed = errors.New("file is closed")

// Lookup returns the info of the tensor called name.
func (f *File) Lookup(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Tensor returns the tensor called name. When the File was opened or parsed
// from memory its Data aliases that memory, is read-only, and is valid
// until Close; otherwise Data is read into a new slice.
func (f *File) Tensor(name string) (*tensor.Tensor, error) {
	i, ok := f.byName[name]
	if !ok {
		return nil, fmt.Errorf("gguf %s: tensor %q: not in the file", displayName(f.Path), name)
	}
	return f.TensorAt(i)
}

// TensorAt returns the i-th tensor in file order, as Tensor does.
func (f *File) TensorAt(i int) (*tensor.Tensor, error) {
	if i < 0 || i >= len(f.Tensors) {
		return nil, fmt.Errorf("gguf %s: tensor index %d out of range [0, %d)", displayName(f.Path), i, len(f.Tensors))
	}
	ti := &f.Tensors[i]
	if f.closed {
		return nil, fmt.Errorf("gguf %s: tensor %q: %w", displayName(f.Path), ti.Name, errClosed)
	}
	start := f.DataOffset + ti.Offset
	var data []byte
	if f.mem != nil {
		data = f.mem[start : start+ti.Size : start+ti.Size]
	} else {
		data = make([]byte, ti.Size)
		if err := readFull(f.r, data, start); err != nil {
			return nil, fmt.Errorf("gguf %s: tensor %q: %w", displayName(f.Path), ti.Name, err)
		}
	}
	return &tensor.Tensor{Name: ti.Name, DType: ti.DType, Shape: append([]int(nil), ti.Shape...), Data: data}, nil
}

// Close releases the file's mapping. Tensors obtained from it must not be
// used afterwards. Close is safe to call more than once.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	f.mem = nil
	if f.unmap != nil {
		err := f.unmap()
		f.unmap = nil
		if err != nil {
			return fmt.Errorf("gguf %s: unmap: %w", displayName(f.Path), err)
		}
	}
	return nil
}

// KVs returns the metadata in file order, ready to pass to Write.
func (f *File) KVs() []KV {
	kv := make([]KV, len(f.Keys))
	for i, k := range f.Keys {
		kv[i] = KV{k, f.Metadata[k]}
	}
	return kv
}

// Value returns the raw metadata value of key.
func (f *File) Value(key string) (any, bool) {
	v, ok := f.Metadata[key]
	return v, ok
}

// String returns the string value of key.
func (f *File) String(key string) (string, bool) {
	v, ok := f.Metadata[key].(string)
	return v, ok
}

// Uint returns the value of key when it is a non-negative integer of any
// integer type.
func (f *File) Uint(key string) (uint64, bool) {
	return toUint64(f.Metadata[key])
}

// Int returns the value of key when it is an integer of any type that fits
// in int64.
func (f *File) Int(key string) (int64, bool) {
	return ToInt64(f.Metadata[key])
}

// Float returns the value of key when it is a float32 or float64.
func (f *File) Float(key string) (float64, bool) {
	switch x := f.Metadata[key].(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// Bool returns the bool value of key.
func (f *File) Bool(key string) (bool, bool) {
	v, ok := f.Metadata[key].(bool)
	return v, ok
}

// Strings returns the string array value of key. The slice is shared with
// Metadata.
func (f *File) Strings(key string) ([]string, bool) {
	v, ok := f.Metadata[key].([]string)
	return v, ok
}

// Float32s returns the float32 array value of key. The slice is shared with
// Metadata.
func (f *File) Float32s(key string) ([]float32, bool) {
	v, ok := f.Metadata[key].([]float32)
	return v, ok
}

// Int32s returns the int32 array value of key. The slice is shared with
// Metadata.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, ok := f.Metadata[key].([]int32)
	return v, ok
}

// Ints returns an integer array value of key, of any integer element type,
// converted to int64; ok is false when an element does not fit.
func (f *File) Ints(key string) ([]int64, bool) {
	switch x := f.Metadata[key].(type) {
	case []int64:
		return append([]int64(nil), x...), true
	case []int8:
		return convInts(x)
	case []uint8:
		return convInts(x)
	case []int16:
		return convInts(x)
	case []uint16:
		return convInts(x)
	case []int32:
		return convInts(x)
	case []uint32:
		return convInts(x)
	case []uint64:
		out := make([]int64, len(x))
		for i, v := range x {
			if v > math.MaxInt64 {
				return nil, false
			}
			out[i] = int64(v)
		}
		return out, true
	}
	return nil, false
}

func convInts[T int8 | uint8 | int16 | uint16 | int32 | uint32](x []T) ([]int64, bool) {
	out := make([]int64, len(x))
	for i, v := range x {
		out[i] = int64(v)
	}
	return out, true
}
