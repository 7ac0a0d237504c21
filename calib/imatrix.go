package calib

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/terse-llm/terse/internal/atomicfile"
)

// IMatrix is llama.cpp's legacy importance-matrix file ("imatrix.dat", the
// format llama-imatrix writes with --output-format dat and llama-quantize
// reads with --imatrix). All integers are little-endian int32, all values
// little-endian float32:
//
//	n_entries
//	n_entries × { name_len, name bytes (no terminator), ncall, nval, nval values }
//	last_chunk                  (chunks processed in total)
//	dataset_len, dataset bytes  (the calibration file's name)
//
// The stored values are NOT raw sums. llama-imatrix accumulates, per input
// column j, S_j = Σ x_j² over every input row (token) the tensor saw and a
// row count c, and writes value_j = S_j / c · ncall with ncall = ⌈c /
// chunk_size⌉ (chunk_size = n_ctx): the mean squared activation times the
// number of chunks. llama-quantize divides by ncall again, so the importance
// a quantizer uses is the mean E[x_j²] (Entry.Importance). Entries are
// written in sorted name order by current llama.cpp (older versions wrote
// hash-map order); IMatrix keeps whatever order it read.
type IMatrix struct {
	Entries   []Entry
	LastChunk int32  // chunks processed when the file was written
	Dataset   string // calibration data set name ("" when none)
}

// Entry is one weight tensor's statistics.
type Entry struct {
	Name   string    // canonical tensor name, e.g. "blk.0.attn_q.weight"
	NCall  int32     // ⌈rows seen / chunk size⌉
	Values []float32 // one per input column: mean squared activation × NCall
}

// Importance returns the mean squared activation per input column
// (Values / NCall), what llama-quantize passes to its quantizers.
func (e *Entry) Importance() []float32 {
	out := make([]float32, len(e.Values))
	for i, v := range e.Values {
		if e.NCall > 0 {
			v /= float32(e.NCall)
		}
		out[i] = v
	}
	return out
}

// Lookup finds the entry named name.
func (m *IMatrix) Lookup(name string) (*Entry, bool) {
	for i := range m.Entries {
		if m.Entries[i].Name == name {
			return &m.Entries[i], true
		}
	}
	return nil, false
}

// Importance returns the mean squared activations of the named tensor, or
// nil when the file has no entry for it.
func (m *IMatrix) Importance(name string) []float32 {
	if e, ok := m.Lookup(name); ok {
		return e.Importance()
	}
	return nil
}

// Limits on what ReadIMatrix accepts, so a corrupt file cannot make it
// allocate without bound: memory grows only as data actually arrives.
const (
	maxNameLen = 1 << 16
	maxValues  = 1 << 30
	readChunk  = 1 << 14 // values read per step
)

// ReadIMatrix parses a legacy imatrix file. A file that ends right after
// its entries (written by llama.cpp before the trailer existed) reads with
// LastChunk 0 and no dataset; anything after the trailer is an error.
func ReadIMatrix(r io.Reader) (*IMatrix, error) {
	br := bufio.NewReader(r)
	rd := &reader{r: br}
	n := rd.i32("entry count")
	if rd.err == nil && n < 1 {
		return nil, fmt.Errorf("imatrix: entry count %d, want at least 1", n)
	}
	m := &IMatrix{}
	for i := int32(0); i < n && rd.err == nil; i++ {
		var e Entry
		e.Name = rd.str(fmt.Sprintf("entry %d name", i))
		e.NCall = rd.i32(fmt.Sprintf("entry %d (%s) ncall", i, e.Name))
		nval := rd.i32(fmt.Sprintf("entry %d (%s) value count", i, e.Name))
		if rd.err != nil {
			break
		}
		if nval < 1 || nval > maxValues {
			return nil, fmt.Errorf("imatrix: entry %d (%s): value count %d out of range", i, e.Name, nval)
		}
		e.Values = rd.f32s(int(nval), fmt.Sprintf("entry %d (%s) values", i, e.Name))
		m.Entries = append(m.Entries, e)
	}
	if rd.err != nil {
		return nil, rd.err
	}
	if _, err := br.Peek(1); err == io.EOF {
		return m, nil
	}
	m.LastChunk = rd.i32("last chunk count")
	m.Dataset = rd.str("dataset name")
	if rd.err != nil {
		return nil, rd.err
	}
	if _, err := br.Peek(1); err != io.EOF {
		return nil, fmt.Errorf("imatrix: unexpected data after the dataset name")
	}
	return m, nil
}

// ReadIMatrixFile reads the legacy imatrix file at path.
func ReadIMatrixFile(path string) (*IMatrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("imatrix: %w", err)
	}
	defer f.Close()
	m, err := ReadIMatrix(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// WriteTo writes m in the legacy format, trailer included; a file read by
// ReadIMatrix is written back byte for byte.
func (m *IMatrix) WriteTo(w io.Writer) (int64, error) {
	if len(m.Entries) == 0 {
		return 0, errors.New("imatrix: no entries to write (llama.cpp rejects empty files)")
	}
	bw := bufio.NewWriter(w)
	cw := &countWriter{w: bw}
	var b [4]byte
	i32 := func(v int32) {
		binary.LittleEndian.PutUint32(b[:], uint32(v))
		cw.Write(b[:])
	}
	i32(int32(len(m.Entries)))
	for _, e := range m.Entries {
		if len(e.Values) == 0 {
			return cw.n, fmt.Errorf("imatrix: entry %s has no values", e.Name)
		}
		i32(int32(len(e.Name)))
		io.WriteString(cw, e.Name)
		i32(e.NCall)
		i32(int32(len(e.Values)))
		for _, v := range e.Values {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			cw.Write(b[:])
		}
	}
	i32(m.LastChunk)
	i32(int32(len(m.Dataset)))
	io.WriteString(cw, m.Dataset)
	if cw.err != nil {
		return cw.n, fmt.Errorf("imatrix: %w", cw.err)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("imatrix: %w", err)
	}
	return cw.n, nil
}

// WriteFile writes m to path in the legacy format, through a synced
// temporary file in the same folder that is renamed into place on success
// (internal/atomicfile): path never holds a partial file.
func (m *IMatrix) WriteFile(path string) error {
	// atomicfile's errors name path; WriteTo's are given it here.
	return atomicfile.WriteFile(path, func(f *atomicfile.File) error {
		if _, err := m.WriteTo(f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
}

// reader decodes little-endian fields, keeping the first error.
type reader struct {
	r   io.Reader
	err error
	buf [4 * readChunk]byte
}

func (r *reader) fail(what string, err error) {
	if r.err == nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.err = fmt.Errorf("imatrix: reading %s: %w", what, err)
	}
}

func (r *reader) i32(what string) int32 {
	if r.err != nil {
		return 0
	}
	if _, err := io.ReadFull(r.r, r.buf[:4]); err != nil {
		r.fail(what, err)
		return 0
	}
	return int32(binary.LittleEndian.Uint32(r.buf[:4]))
}

func (r *reader) str(what string) string {
	n := r.i32(what + " length")
	if r.err != nil {
		return ""
	}
	if n < 0 || n > maxNameLen {
		r.fail(what, fmt.Errorf("length %d out of range", n))
		return ""
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		r.fail(what, err)
		return ""
	}
	return string(b)
}

// f32s reads n values in bounded steps, so a lying count costs at most
// about twice the bytes actually present.
func (r *reader) f32s(n int, what string) []float32 {
	out := make([]float32, 0, min(n, readChunk))
	for len(out) < n && r.err == nil {
		k := min(n-len(out), readChunk)
		b := r.buf[:4*k]
		if _, err := io.ReadFull(r.r, b); err != nil {
			r.fail(what, err)
			return nil
		}
		for i := 0; i < k; i++ {
			out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		}
	}
	return out
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
