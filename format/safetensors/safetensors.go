// Package safetensors reads and writes the safetensors format
// (https://huggingface.co/docs/safetensors), the usual container of Hugging
// Face checkpoints, including checkpoints sharded over several files with a
// model.safetensors.index.json.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON that map
// each tensor name to its dtype, shape and [begin, end) byte offsets in the
// data section that follows (plus an optional "__metadata__" object of
// strings), then the data section. Files are memory-mapped and tensors are
// returned as slices of the mapping, so opening a checkpoint reads nothing
// but the headers.
package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"

	"github.com/terse-llm/terse/internal/atomicfile"
	"github.com/terse-llm/terse/internal/mmap"
	"github.com/terse-llm/terse/tensor"
)

// MaxHeaderSize bounds the JSON header. Real headers are well under a
// megabyte; the reference implementation refuses anything over 100 MB.
const MaxHeaderSize = 100 << 20

// ErrNotFound is returned (wrapped) by Info and Tensor for a name that the
// file or checkpoint does not hold.
var ErrNotFound = errors.New("not found")

// dtypes maps the safetensors dtype names this package handles.
var dtypes = map[string]tensor.DType{
	"F32":  tensor.F32,
	"F16":  tensor.F16,
	"BF16": tensor.BF16,
	"F64":  tensor.F64,
	"I8":   tensor.I8,
	"U8":   tensor.U8,
	"I16":  tensor.I16,
	"I32":  tensor.I32,
	"I64":  tensor.I64,
}

// dtypeName is the safetensors name of a supported DType, or "".
func dtypeName(dt tensor.DType) string {
	for n, t := range dtypes {
		if t == dt {
			return n
		}
	}
	return ""
}

// TensorInfo describes one stored tensor.
type TensorInfo struct {
	Name  string
	DType tensor.DType
	Shape []int // outermost first
	// Begin and End are the byte offsets of the tensor within the data
	// section (which starts after the header).
	Begin, End int64
}

// File is one opened safetensors file.
type File struct {
	path  string
	m     *mmap.Map // nil for Parse
	size  int64
	data  []byte // the data section
	names []string
	infos map[string]*TensorInfo
	meta  map[string]string
}

// Open memory-maps and parses the safetensors file at path. Close releases
// the mapping; tensors from the file must not be used after that.
func Open(path string) (*File, error) {
	m, err := mmap.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	f, err := parse(path, m.Data())
	if err != nil {
		m.Close()
		return nil, err
	}
	f.m = m
	return f, nil
}

// Parse parses a whole safetensors file held in memory. The returned
// tensors alias b.
func Parse(b []byte) (*File, error) { return parse("<memory>", b) }

// headerEntry is one tensor's header record.
type headerEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

func parse(path string, b []byte) (*File, error) {
	errf := func(format string, a ...any) error {
		return fmt.Errorf("safetensors %s: "+format, append([]any{path}, a...)...)
	}
	if len(b) < 8 {
		return nil, errf("file of %d bytes is too short for a header", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, errf("header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return nil, errf("header length %d runs past the end of the %d-byte file", n, len(b))
	}
	hdr := b[8 : 8+n]
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, errf("header does not start with a JSON object")
	}
	f := &File{
		path:  path,
		size:  int64(len(b)),
		data:  b[8+n:],
		infos: map[string]*TensorInfo{},
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if _, err := dec.Token(); err != nil { // the opening '{'
		return nil, errf("header: %w", err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errf("header: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errf("header: unexpected %v", tok)
		}
		if seen[name] {
			return nil, errf("tensor %q: listed twice in the header", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			var meta map[string]string
			if err := dec.Decode(&meta); err != nil {
				return nil, errf("__metadata__ must map strings to strings: %w", err)
			}
			f.meta = meta
			continue
		}
		var e headerEntry
		if err := dec.Decode(&e); err != nil {
			return nil, errf("tensor %q: %w", name, err)
		}
		ti, err := f.check(name, &e)
		if err != nil {
			return nil, errf("tensor %q: %w", name, err)
		}
		f.infos[name] = ti
		f.names = append(f.names, name)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, errf("header: %w", err)
	}
	// The spec allows trailing spaces as padding; nothing else may follow.
	if rest := bytes.TrimRight(hdr[dec.InputOffset():], " \t\r\n\x00"); len(rest) != 0 {
		return nil, errf("header: %d unexpected bytes after the JSON object", len(rest))
	}
	// File order: by offset, so that reading tensors in Names order walks
	// the file forwards. No two tensors may share bytes.
	sort.SliceStable(f.names, func(i, j int) bool {
		a, c := f.infos[f.names[i]], f.infos[f.names[j]]
		if a.Begin != c.Begin {
			return a.Begin < c.Begin
		}
		return a.End < c.End
	})
	var prev *TensorInfo
	for _, name := range f.names {
		ti := f.infos[name]
		if prev != nil && ti.Begin < prev.End {
			return nil, errf("tensor %q: bytes [%d, %d) overlap tensor %q [%d, %d)",
				name, ti.Begin, ti.End, prev.Name, prev.Begin, prev.End)
		}
		if ti.End > ti.Begin || prev == nil {
			prev = ti
		}
	}
	return f, nil
}

// check validates one header entry against the data section.
func (f *File) check(name string, e *headerEntry) (*TensorInfo, error) {
	dt, ok := dtypes[e.DType]
	if !ok {
		if e.DType == "" {
			return nil, errors.New("no dtype")
		}
		return nil, fmt.Errorf("unsupported dtype %q (supported: F32, F16, BF16, F64, I8, U8, I16, I32, I64)", e.DType)
	}
	if e.Shape == nil {
		// A scalar is written as "shape": []; a missing shape is an error.
		return nil, errors.New("no shape")
	}
	shape := make([]int, len(e.Shape))
	count := int64(1)
	for i, d := range e.Shape {
		if d < 0 || d > int64(math.MaxInt) {
			return nil, fmt.Errorf("bad dimension %d in shape %v", d, e.Shape)
		}
		shape[i] = int(d)
		if d != 0 && count > math.MaxInt64/16/d {
			return nil, fmt.Errorf("shape %v is too large", e.Shape)
		}
		count *= d
	}
	if len(e.DataOffsets) != 2 {
		return nil, fmt.Errorf("data_offsets must hold 2 numbers, has %d", len(e.DataOffsets))
	}
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin < 0 || begin > end {
		return nil, fmt.Errorf("data_offsets [%d, %d] are not increasing", begin, end)
	}
	if end > int64(len(f.data)) {
		return nil, fmt.Errorf("data_offsets [%d, %d] run past the %d-byte data section", begin, end, len(f.data))
	}
	if want := count * int64(dt.BlockBytes()); end-begin != want {
		return nil, fmt.Errorf("%s %v needs %d bytes, data_offsets [%d, %d] hold %d", e.DType, e.Shape, want, begin, end, end-begin)
	}
	return &TensorInfo{Name: name, DType: dt, Shape: shape, Begin: begin, End: end}, nil
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Bytes returns the file's size.
func (f *File) Bytes() int64 { return f.size }

// Names returns the tensor names in file (offset) order.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Metadata returns the header's "__metadata__" strings (nil when absent).
func (f *File) Metadata() map[string]string { return maps.Clone(f.meta) }

// Info returns the dtype, shape and offsets of the named tensor.
func (f *File) Info(name string) (TensorInfo, error) {
	ti, ok := f.infos[name]
	if !ok {
		return TensorInfo{}, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, ErrNotFound)
	}
	out := *ti
	out.Shape = slices.Clone(ti.Shape)
	return out, nil
}

// Tensor returns the named tensor. Its Data aliases the file's mapping: it
// is read-only and valid until Close.
func (f *File) Tensor(name string) (*tensor.Tensor, error) {
	ti, ok := f.infos[name]
	if !ok {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, ErrNotFound)
	}
	if f.data == nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: file is closed", f.path, name)
	}
	t, err := tensor.New(name, ti.DType, slices.Clone(ti.Shape), f.data[ti.Begin:ti.End:ti.End])
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, err)
	}
	return t, nil
}

// Close releases the mapping. Tensors from the file become invalid.
func (f *File) Close() error {
	f.data = nil
	if f.m == nil {
		return nil
	}
	m := f.m
	f.m = nil
	return m.Close()
}

// Write writes tensors (in the given order) and optional metadata as one
// safetensors file. The header is padded with spaces so that the data
// section starts on an 8-byte boundary, as the format asks. Only the dtypes
// safetensors names (F32, F16, BF16, F64, I8, U8, I16, I32, I64) can be
// written.
func Write(w io.Writer, tensors []*tensor.Tensor, metadata map[string]string) error {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
	}
	if len(metadata) > 0 {
		mb, err := json.Marshal(metadata) // keys sorted
		if err != nil {
			return fmt.Errorf("safetensors: __metadata__: %w", err)
		}
		sep()
		hdr.WriteString(`"__metadata__":`)
		hdr.Write(mb)
	}
	seen := map[string]bool{}
	var off int64
	for _, t := range tensors {
		if t == nil {
			return errors.New("safetensors: nil tensor")
		}
		dn := dtypeName(t.DType)
		switch {
		case t.Name == "__metadata__":
			return fmt.Errorf("safetensors: tensor %q: reserved name", t.Name)
		case seen[t.Name]:
			return fmt.Errorf("safetensors: tensor %q: written twice", t.Name)
		case dn == "":
			return fmt.Errorf("safetensors: tensor %q: dtype %s has no safetensors name", t.Name, t.DType)
		}
		seen[t.Name] = true
		want, err := t.ByteSize()
		if err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", t.Name, err)
		}
		if want != len(t.Data) {
			return fmt.Errorf("safetensors: tensor %q: %s %v needs %d bytes, have %d", t.Name, t.DType, t.Shape, want, len(t.Data))
		}
		nb, _ := json.Marshal(t.Name)
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		sb, _ := json.Marshal(shape)
		sep()
		fmt.Fprintf(&hdr, `%s:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, nb, dn, sb, off, off+int64(want))
		off += int64(want)
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	if hdr.Len() > MaxHeaderSize {
		return fmt.Errorf("safetensors: header of %d bytes exceeds the %d-byte limit", hdr.Len(), MaxHeaderSize)
	}
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(hdr.Len()))
	if _, err := w.Write(lenb[:]); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", t.Name, err)
		}
	}
	return nil
}

// WriteFile writes tensors and metadata to path through a synced
// temporary file in the same folder that is renamed into place on success
// (internal/atomicfile): path never holds a partial file.
func WriteFile(path string, tensors []*tensor.Tensor, metadata map[string]string) error {
	// atomicfile's errors name path; Write's are given it here.
	return atomicfile.WriteFile(path, func(f *atomicfile.File) error {
		bw := bufio.NewWriterSize(f, 1<<20)
		if err := Write(bw, tensors, metadata); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return bw.Flush()
	})
}
