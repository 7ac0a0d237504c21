// Package native is terse's own model file, for compression methods GGUF
// cannot hold: learned scalar codebooks (quant/kmeans) and vector, residual
// and product quantization (quant/vq). The model runs from it directly: the
// coded matrices stay coded and are decoded a row at a time by the kernels
// (tensor.RowDecoder).
//
// # Layout
//
// A native file (extension ".terse") is a safetensors file (package
// format/safetensors). Tensor names are terse's canonical names
// ("blk.0.attn_q.weight"). Its __metadata__ holds:
//
//   - "format": "terse-native/1" — the marker and version;
//   - "terse.config": the model.Config as JSON (Go field names);
//   - "terse.tokenizer": JSON {"kind": "hf-json", "tensor": NAME}: the
//     tokenizer is the Hugging Face tokenizer.json whose bytes are the U8
//     tensor NAME (shape [len]);
//   - "terse.tensors": JSON object mapping each coded matrix's name to an
//     Entry: {"method", "shape": [rows, cols], "bits", ..., "codes",
//     "codebooks", "scales", "bits_per_weight"}.
//
// Entry fields by method:
//
//   - "kmeans": "bits" (code bits b, K = 2^b), "group" (columns per
//     codebook); components "codes": U8 [rows, ⌈cols·b/8⌉], each row's codes
//     packed least significant bit first (kmeans.PackCodes); "codebooks":
//     F16 [rows·⌈cols/group⌉, K], the codebook of group g of row r at row
//     r·groups+g.
//   - "vq", "rvq", "pq": "d" (sub-vector length), "bits" (code bits k per
//     sub-vector and stage, K = 2^k), "stages", "segments", "row_group";
//     components "codes": U8 [rows, ⌈(cols/d)·stages·k/8⌉], per row the
//     codes of sub-vector 0 stage 0, sub-vector 0 stage 1, …, packed as
//     above; "codebooks": F16 [stages·⌈rows/row_group⌉·segments·K, d] in
//     that nesting order; "scales": F16 [rows]. Row r decodes as
//     ŵ = scale_r · Σ_stages codebook[stage][r/row_group][p/seg_len][code].
//
// Every other tensor (norms, uncompressed matrices) is stored as itself in
// F32, F16 or BF16. Components are not model tensors.
//
// Open validates all of it — the marker, the config, every entry (method,
// parameters, component names, dtypes and shapes, finite codebooks and
// scales), that plain tensors are float and that no tensor is claimed
// twice — and names the file in every error.
package native

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/terse-llm/terse/format/safetensors"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant/kmeans"
	"github.com/terse-llm/terse/quant/vq"
	"github.com/terse-llm/terse/tensor"
)

// Marker is the value of the "format" metadata key.
const Marker = "terse-native/1"

// Ext is the file extension of native files.
const Ext = ".terse"

// Metadata keys.
const (
	KeyFormat    = "format"
	KeyConfig    = "terse.config"
	KeyTokenizer = "terse.tokenizer"
	KeyTensors   = "terse.tensors"
)

// tokenizerTensor is the U8 tensor holding tokenizer.json.
const tokenizerTensor = "terse.tokenizer.json"

// Entry describes one coded matrix.
type Entry struct {
	Method   string `json:"method"` // kmeans, vq, rvq or pq
	Shape    []int  `json:"shape"`  // [rows, cols]
	Bits     int    `json:"bits"`   // code bits
	Group    int    `json:"group,omitempty"`
	Dim      int    `json:"d,omitempty"`
	Stages   int    `json:"stages,omitempty"`
	Segments int    `json:"segments,omitempty"`
	RowGroup int    `json:"row_group,omitempty"`

	Codes     string `json:"codes"`
	Codebooks string `json:"codebooks"`
	Scales    string `json:"scales,omitempty"`

	BitsPerWeight float64 `json:"bits_per_weight"`
}

// Tokenizer says where the tokenizer is.
type Tokenizer struct {
	Kind   string `json:"kind"` // "hf-json"
	Tensor string `json:"tensor"`
}

// Meta is the parsed __metadata__.
type Meta struct {
	Config    model.Config
	Tokenizer Tokenizer
	Tensors   map[string]Entry
}

// ParseMetadata parses and checks the metadata of a native file (not the
// tensors it refers to).
func ParseMetadata(md map[string]string) (*Meta, error) {
	if md[KeyFormat] != Marker {
		return nil, fmt.Errorf("not a terse native file (format %q, want %q)", md[KeyFormat], Marker)
	}
	m := &Meta{}
	if err := strictJSON(md[KeyConfig], &m.Config); err != nil {
		return nil, fmt.Errorf("%s: %w", KeyConfig, err)
	}
	if err := m.Config.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", KeyConfig, err)
	}
	if err := strictJSON(md[KeyTokenizer], &m.Tokenizer); err != nil {
		return nil, fmt.Errorf("%s: %w", KeyTokenizer, err)
	}
	if m.Tokenizer.Kind != "hf-json" || m.Tokenizer.Tensor == "" {
		return nil, fmt.Errorf("%s: kind %q with tensor %q, want hf-json and a tensor", KeyTokenizer, m.Tokenizer.Kind, m.Tokenizer.Tensor)
	}
	if err := strictJSON(md[KeyTensors], &m.Tensors); err != nil {
		return nil, fmt.Errorf("%s: %w", KeyTensors, err)
	}
	claimed := map[string]string{m.Tokenizer.Tensor: "the tokenizer"}
	names := make([]string, 0, len(m.Tensors))
	for n := range m.Tensors {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		e := m.Tensors[name]
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		parts := []string{name, e.Codes, e.Codebooks}
		if e.Scales != "" {
			parts = append(parts, e.Scales)
		}
		for _, p := range parts {
			if p == "" {
				return nil, fmt.Errorf("tensor %q: empty component name", name)
			}
			if o, ok := claimed[p]; ok {
				return nil, fmt.Errorf("tensor %q: %q is already used by %s", name, p, o)
			}
			claimed[p] = fmt.Sprintf("tensor %q", name)
		}
	}
	return m, nil
}

func strictJSON(s string, v any) error {
	if s == "" {
		return fmt.Errorf("missing")
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

func (e *Entry) check() error {
	if len(e.Shape) != 2 || e.Shape[0] <= 0 || e.Shape[1] <= 0 || e.Shape[0] > 1<<24 || e.Shape[1] > 1<<24 {
		return fmt.Errorf("shape %v is not a matrix", e.Shape)
	}
	switch e.Method {
	case "kmeans":
		if e.Bits < 1 || e.Bits > 8 || e.Group <= 0 || e.Group > e.Shape[1] || e.Scales != "" {
			return fmt.Errorf("kmeans with bits %d, group %d, scales %q", e.Bits, e.Group, e.Scales)
		}
	case "vq", "rvq", "pq":
		if e.Bits < 1 || e.Bits > 16 || e.Dim < 1 || e.Dim > 8 || e.Shape[1]%e.Dim != 0 ||
			e.Stages < 1 || e.Stages > 4 || e.Segments < 1 || e.Segments > e.Shape[1]/e.Dim ||
			e.RowGroup < 1 || e.RowGroup > e.Shape[0] || e.Scales == "" {
			return fmt.Errorf("%s with d %d, bits %d, stages %d, segments %d, row group %d", e.Method, e.Dim, e.Bits, e.Stages, e.Segments, e.RowGroup)
		}
		if want := (vq.Config{Stages: e.Stages, Segments: e.Segments}).Method(); want != e.Method {
			return fmt.Errorf("method %q with %d stages and %d segments is %q", e.Method, e.Stages, e.Segments, want)
		}
	default:
		return fmt.Errorf("unknown method %q", e.Method)
	}
	return nil
}

// entryOf describes a coded tensor for writing.
func entryOf(t *tensor.Tensor) (Entry, []*tensor.Tensor, error) {
	f16 := func(name string, shape []int, v []uint16) *tensor.Tensor {
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], x)
		}
		return &tensor.Tensor{Name: name, DType: tensor.F16, Shape: shape, Data: b}
	}
	n := t.Name
	switch m := t.Decoder.(type) {
	case *kmeans.Matrix:
		e := Entry{Method: "kmeans", Shape: []int{m.Rows, m.Cols}, Bits: m.CodeBits, Group: m.GroupSize,
			Codes: n + ".codes", Codebooks: n + ".codebooks", BitsPerWeight: m.Bits()}
		return e, []*tensor.Tensor{
			{Name: e.Codes, DType: tensor.U8, Shape: []int{m.Rows, m.RowBytes()}, Data: m.Codes},
			f16(e.Codebooks, []int{m.Rows * m.Groups(), m.K()}, m.Codebooks),
		}, nil
	case *vq.Matrix:
		e := Entry{Method: m.Method(), Shape: []int{m.Rows, m.Cols}, Bits: m.CodeBits, Dim: m.Dim,
			Stages: m.Stages, Segments: m.Segments, RowGroup: m.RowGroup,
			Codes: n + ".codes", Codebooks: n + ".codebooks", Scales: n + ".scales", BitsPerWeight: m.Bits()}
		return e, []*tensor.Tensor{
			{Name: e.Codes, DType: tensor.U8, Shape: []int{m.Rows, m.RowBytes()}, Data: m.Codes},
			f16(e.Codebooks, []int{len(m.Codebooks) / m.Dim, m.Dim}, m.Codebooks),
			f16(e.Scales, []int{m.Rows}, m.Scales),
		}, nil
	}
	return Entry{}, nil, fmt.Errorf("tensor %q: decoder %T cannot be stored", n, t.Decoder)
}

// Write writes a native file: the model configuration, the tokenizer.json
// bytes and the tensors under canonical names, each either coded (a
// tensor.Codebook tensor whose Decoder is a *kmeans.Matrix or *vq.Matrix)
// or float (F32, F16, BF16).
func Write(w io.Writer, cfg model.Config, tokenizerJSON []byte, ts []*tensor.Tensor) error {
	md, all, err := layout(cfg, tokenizerJSON, ts)
	if err != nil {
		return err
	}
	return safetensors.Write(w, all, md)
}

// WriteFile is Write to a new file at path.
func WriteFile(path string, cfg model.Config, tokenizerJSON []byte, ts []*tensor.Tensor) error {
	md, all, err := layout(cfg, tokenizerJSON, ts)
	if err != nil {
		return fmt.Errorf("native %s: %w", path, err)
	}
	return safetensors.WriteFile(path, all, md)
}

func layout(cfg model.Config, tokenizerJSON []byte, ts []*tensor.Tensor) (map[string]string, []*tensor.Tensor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if len(tokenizerJSON) == 0 {
		return nil, nil, fmt.Errorf("no tokenizer.json")
	}
	entries := map[string]Entry{}
	all := []*tensor.Tensor{{Name: tokenizerTensor, DType: tensor.U8, Shape: []int{len(tokenizerJSON)}, Data: tokenizerJSON}}
	for _, t := range ts {
		if t.Decoder != nil {
			e, parts, err := entryOf(t)
			if err != nil {
				return nil, nil, err
			}
			entries[t.Name] = e
			all = append(all, parts...)
			continue
		}
		if !t.DType.Float() {
			return nil, nil, fmt.Errorf("tensor %q: %s is neither coded nor F32, F16 or BF16", t.Name, t.DType)
		}
		all = append(all, t)
	}
	cj, err := json.Marshal(cfg)
	if err != nil {
		return nil, nil, err
	}
	tj, _ := json.Marshal(Tokenizer{Kind: "hf-json", Tensor: tokenizerTensor})
	ej, err := json.Marshal(entries)
	if err != nil {
		return nil, nil, err
	}
	md := map[string]string{KeyFormat: Marker, KeyConfig: string(cj), KeyTokenizer: string(tj), KeyTensors: string(ej)}
	// The reader's checks, before anything is written.
	if _, err := ParseMetadata(md); err != nil {
		return nil, nil, err
	}
	return md, all, nil
}

// File is an opened native file.
type File struct {
	Path string
	Meta *Meta
	// Tensors are the model's tensors under canonical names, in file
	// order: coded matrices as tensor.Codebook tensors with a Decoder,
	// the rest as stored (aliasing the memory-mapped file).
	Tensors       []*tensor.Tensor
	TokenizerJSON []byte
	st            *safetensors.File
	byName        map[string]*tensor.Tensor
}

// Open memory-maps, parses and validates the native file at path.
func Open(path string) (*File, error) {
	st, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	f, err := build(path, st)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("native %s: %w", path, err)
	}
	return f, nil
}

// Parse reads a whole native file held in memory (name is used in errors);
// tensors alias b.
func Parse(name string, b []byte) (*File, error) {
	st, err := safetensors.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("native %s: %w", name, err)
	}
	f, err := build(name, st)
	if err != nil {
		return nil, fmt.Errorf("native %s: %w", name, err)
	}
	return f, nil
}

func build(path string, st *safetensors.File) (*File, error) {
	meta, err := ParseMetadata(st.Metadata())
	if err != nil {
		return nil, err
	}
	f := &File{Path: path, Meta: meta, st: st, byName: map[string]*tensor.Tensor{}}
	get := func(name string, dt tensor.DType, shape ...int) (*tensor.Tensor, error) {
		t, err := st.Tensor(name)
		if err != nil {
			return nil, err
		}
		if t.DType != dt || !slices.Equal(t.Shape, shape) {
			return nil, fmt.Errorf("tensor %q is %s %v, want %s %v", name, t.DType, t.Shape, dt, shape)
		}
		return t, nil
	}
	tok, err := st.Tensor(meta.Tokenizer.Tensor)
	if err != nil {
		return nil, err
	}
	if tok.DType != tensor.U8 || len(tok.Shape) != 1 {
		return nil, fmt.Errorf("tokenizer tensor %q is %s %v, want U8 [n]", tok.Name, tok.DType, tok.Shape)
	}
	f.TokenizerJSON = tok.Data
	components := map[string]bool{meta.Tokenizer.Tensor: true}
	for _, e := range meta.Tensors {
		components[e.Codes], components[e.Codebooks] = true, true
		if e.Scales != "" {
			components[e.Scales] = true
		}
	}
	coded := map[string]*tensor.Tensor{}
	for name, e := range meta.Tensors {
		if _, err := st.Info(name); err == nil {
			return nil, fmt.Errorf("tensor %q is both coded and stored", name)
		}
		rows, cols := e.Shape[0], e.Shape[1]
		var dec tensor.RowDecoder
		switch e.Method {
		case "kmeans":
			m := &kmeans.Matrix{Rows: rows, Cols: cols, CodeBits: e.Bits, GroupSize: e.Group}
			codes, err := get(e.Codes, tensor.U8, rows, m.RowBytes())
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", name, err)
			}
			books, err := get(e.Codebooks, tensor.F16, rows*m.Groups(), m.K())
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", name, err)
			}
			m.Codes, m.Codebooks = codes.Data, halves(books.Data)
			if err := m.Check(); err != nil {
				return nil, fmt.Errorf("tensor %q: %w", name, err)
			}
			dec = m
		default:
			m := &vq.Matrix{Rows: rows, Cols: cols, Dim: e.Dim, CodeBits: e.Bits, Stages: e.Stages,
				Segments: e.Segments, RowGroup: e.RowGroup}
			codes, err := get(e.Codes, tensor.U8, rows, m.RowBytes())
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", name, err)
			}
			nb := e.Stages * m.RowGroups() * e.Segments * m.K()
			books, err := get(e.Codebooks, tensor.F16, nb, e.Dim)
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", name, err)
			}
			scales, err := get(e.Scales, tensor.F16, rows)
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", name, err)
			}
			m.Codes, m.Codebooks, m.Scales = codes.Data, halves(books.Data), halves(scales.Data)
			if err := m.Check(); err != nil {
				return nil, fmt.Errorf("tensor %q: %w", name, err)
			}
			dec = m
		}
		coded[name] = tensor.NewCoded(name, e.Shape, dec)
	}
	// File order: stored tensors as they come, each coded matrix where its
	// codes are.
	for _, name := range st.Names() {
		switch {
		case !components[name]:
			t, err := st.Tensor(name)
			if err != nil {
				return nil, err
			}
			if !t.DType.Float() {
				return nil, fmt.Errorf("tensor %q is %s, want F32, F16 or BF16", name, t.DType)
			}
			f.add(t)
		default:
			for cn, e := range meta.Tensors {
				if e.Codes == name {
					f.add(coded[cn])
				}
			}
		}
	}
	return f, nil
}

func (f *File) add(t *tensor.Tensor) {
	f.Tensors = append(f.Tensors, t)
	f.byName[t.Name] = t
}

func halves(b []byte) []uint16 {
	v := make([]uint16, len(b)/2)
	for i := range v {
		v[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return v
}

// Tensor returns the model tensor name (coded or plain).
func (f *File) Tensor(name string) (*tensor.Tensor, bool) {
	t, ok := f.byName[name]
	return t, ok
}

// Bytes is the file size.
func (f *File) Bytes() int64 { return f.st.Bytes() }

// Close releases the mapping; tensors must not be used afterwards.
func (f *File) Close() error { return f.st.Close() }

// Sniff reports whether path is a native file: a safetensors file whose
// metadata carries the marker. It reads only the header.
func Sniff(path string) bool {
	fh, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fh.Close()
	var lb [8]byte
	if _, err := io.ReadFull(fh, lb[:]); err != nil {
		return false
	}
	n := binary.LittleEndian.Uint64(lb[:])
	if n < 2 || n > safetensors.MaxHeaderSize {
		return false
	}
	var hdr struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.NewDecoder(io.LimitReader(fh, int64(n))).Decode(&hdr); err != nil {
		return false
	}
	return hdr.Meta[KeyFormat] == Marker
}
