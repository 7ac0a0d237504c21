// Package native is terse's own model file, for compression methods GGUF
// cannot hold: learned scalar codebooks (quant/kmeans) and vector, residual
// and product quantization (quant/vq). The model runs from it directly: the
// coded matrices stay coded and are decoded a row at a time by the kernels
// (tensor.RowDecoder). The package only serializes: what goes in a file is
// decided by package compress.
//
// # Layout
//
// A native file (extension ".terse") is a safetensors file (package
// format/safetensors). Tensor names are terse's canonical names
// ("blk.0.attn_q.weight"). Its __metadata__ holds two string values:
//
//   - "format": "terse-native" — the marker (Sniff looks for it);
//   - "terse": one JSON document, the schema below.
//
// # Schema (format_version 2)
//
// Every key is snake_case; readers reject unknown keys, and a
// format_version other than 2 (version 1 was "format": "terse-native/1",
// with Go field names, and is no longer read).
//
//	{
//	  "format_version": 2,
//	  "config": {
//	    "arch": "llama", "dim": 512, "n_layers": 8, "n_heads": 8,
//	    "n_kv_heads": 8, "head_dim": 64, "ffn_dim": 1536,
//	    "vocab_size": 32000, "max_seq_len": 2048, "norm_eps": 1e-5,
//	    "rope_theta": 10000, "rope_style": "interleaved" | "half",
//	    "rope_scaling": null | {"type": "llama3" | "linear", "factor",
//	        "low_freq_factor", "high_freq_factor",
//	        "original_max_position_embeddings", "freq_factors": [..]},
//	    "tied_embeddings": false, "attn_bias": false,
//	    "sliding_window": 0, "bos": 1, "eos": 2,
//	    "layers": [{"n_heads", "n_kv_heads", "ffn_dim"}, ...]
//	  },
//	  "tokenizer": {"kind": "hf-json" | "llama2c", "tensor": NAME},
//	  "tensors": {NAME: ENTRY, ...}
//	}
//
// The tokenizer is the U8 tensor NAME (shape [len]): for "hf-json" the bytes
// of a Hugging Face tokenizer.json, for "llama2c" those of a llama2.c
// tokenizer.bin. "bos" and "eos" are token ids, -1 when absent. "layers"
// (omitted when every block has the model-wide shape) gives each block's
// own head counts and FFN width, a zero or absent field keeping the
// model-wide value: structured pruning makes such models.
//
// "tensors" maps each coded matrix's name to an ENTRY: {"method", "shape":
// [rows, cols], "bits", ..., "codes", "codebooks", "scales",
// "bits_per_weight"}. Entry fields by method:
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
// Open validates all of it — the marker, the version, the config, every
// entry (method, parameters, component names, dtypes and shapes, finite
// codebooks and scales), that plain tensors are float and that no tensor is
// claimed twice — and names the file in every error.
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
const Marker = "terse-native"

// Version is the format_version this package writes and reads.
const Version = 2

// Ext is the file extension of native files.
const Ext = ".terse"

// Metadata keys.
const (
	// KeyFormat holds Marker.
	KeyFormat = "format"
	// KeyDocument holds the JSON document (Document).
	KeyDocument = "terse"
)

// Tokenizer kinds.
const (
	// TokenizerHF is a Hugging Face tokenizer.json.
	TokenizerHF = "hf-json"
	// TokenizerLlama2c is a llama2.c tokenizer.bin.
	TokenizerLlama2c = "llama2c"
)

// tokenizerTensor is the U8 tensor holding the tokenizer file.
const tokenizerTensor = "terse.tokenizer"

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

// Tokenizer says where the tokenizer is and what it is.
type Tokenizer struct {
	Kind   string `json:"kind"` // TokenizerHF or TokenizerLlama2c
	Tensor string `json:"tensor"`
}

// RopeScaling is the file's form of model.RopeScaling.
type RopeScaling struct {
	Type           string    `json:"type"`
	Factor         float64   `json:"factor"`
	LowFreqFactor  float64   `json:"low_freq_factor,omitempty"`
	HighFreqFactor float64   `json:"high_freq_factor,omitempty"`
	OriginalMaxPos int       `json:"original_max_position_embeddings,omitempty"`
	FreqFactors    []float64 `json:"freq_factors,omitempty"`
}

// Config is the file's (and every --json output's) form of model.Config:
// the same fields under snake_case keys, the RoPE style as a word.
type Config struct {
	Arch           string       `json:"arch"`
	Dim            int          `json:"dim"`
	NLayers        int          `json:"n_layers"`
	NHeads         int          `json:"n_heads"`
	NKVHeads       int          `json:"n_kv_heads"`
	HeadDim        int          `json:"head_dim"`
	FFNDim         int          `json:"ffn_dim"`
	VocabSize      int          `json:"vocab_size"`
	MaxSeqLen      int          `json:"max_seq_len"`
	NormEps        float64      `json:"norm_eps"`
	RopeTheta      float64      `json:"rope_theta"`
	RopeStyle      string       `json:"rope_style"` // "interleaved" or "half"
	RopeScaling    *RopeScaling `json:"rope_scaling"`
	TiedEmbeddings bool         `json:"tied_embeddings"`
	AttnBias       bool         `json:"attn_bias"`
	SlidingWindow  int          `json:"sliding_window"`
	BOS            int          `json:"bos"`
	EOS            int          `json:"eos"`
	// Layers, when present, gives each block's own shape (structured
	// pruning makes models whose blocks differ); a zero field keeps the
	// model-wide value.
	Layers []LayerShape `json:"layers,omitempty"`
}

// LayerShape is one block's shape where it may differ from the others.
type LayerShape struct {
	NHeads   int `json:"n_heads,omitempty"`
	NKVHeads int `json:"n_kv_heads,omitempty"`
	FFNDim   int `json:"ffn_dim,omitempty"`
}

// ConfigOf is c in the file's form.
func ConfigOf(c model.Config) Config {
	out := Config{Arch: c.Arch, Dim: c.Dim, NLayers: c.NLayers, NHeads: c.NHeads, NKVHeads: c.NKVHeads,
		HeadDim: c.HeadDim, FFNDim: c.FFNDim, VocabSize: c.VocabSize, MaxSeqLen: c.MaxSeqLen,
		NormEps: c.NormEps, RopeTheta: c.RopeTheta, RopeStyle: c.RopeStyle.String(),
		TiedEmbeddings: c.TiedEmbeddings, AttnBias: c.AttnBias, SlidingWindow: c.SlidingWindow,
		BOS: c.BOS, EOS: c.EOS}
	for _, l := range c.Layers {
		out.Layers = append(out.Layers, LayerShape{NHeads: l.NHeads, NKVHeads: l.NKVHeads, FFNDim: l.FFNDim})
	}
	if s := c.RopeScaling; s != nil {
		out.RopeScaling = &RopeScaling{Type: s.Type, Factor: s.Factor, LowFreqFactor: s.LowFreqFactor,
			HighFreqFactor: s.HighFreqFactor, OriginalMaxPos: s.OriginalMaxPos,
			FreqFactors: append([]float64(nil), s.FreqFactors...)}
	}
	return out
}

// Model is c as a model.Config, checked.
func (c Config) Model() (model.Config, error) {
	out := model.Config{Arch: c.Arch, Dim: c.Dim, NLayers: c.NLayers, NHeads: c.NHeads, NKVHeads: c.NKVHeads,
		HeadDim: c.HeadDim, FFNDim: c.FFNDim, VocabSize: c.VocabSize, MaxSeqLen: c.MaxSeqLen,
		NormEps: c.NormEps, RopeTheta: c.RopeTheta,
		TiedEmbeddings: c.TiedEmbeddings, AttnBias: c.AttnBias, SlidingWindow: c.SlidingWindow,
		BOS: c.BOS, EOS: c.EOS}
	for _, l := range c.Layers {
		out.Layers = append(out.Layers, model.LayerShape{NHeads: l.NHeads, NKVHeads: l.NKVHeads, FFNDim: l.FFNDim})
	}
	switch c.RopeStyle {
	case model.RopeInterleaved.String():
		out.RopeStyle = model.RopeInterleaved
	case model.RopeHalf.String():
		out.RopeStyle = model.RopeHalf
	default:
		return out, fmt.Errorf("rope_style %q, want %q or %q", c.RopeStyle, model.RopeInterleaved, model.RopeHalf)
	}
	if s := c.RopeScaling; s != nil {
		out.RopeScaling = &model.RopeScaling{Type: s.Type, Factor: s.Factor, LowFreqFactor: s.LowFreqFactor,
			HighFreqFactor: s.HighFreqFactor, OriginalMaxPos: s.OriginalMaxPos,
			FreqFactors: append([]float64(nil), s.FreqFactors...)}
	}
	if c.BOS < -1 || c.BOS >= c.VocabSize || c.EOS < -1 || c.EOS >= c.VocabSize {
		return out, fmt.Errorf("bos %d, eos %d: want -1 or a token id below vocab_size %d", c.BOS, c.EOS, c.VocabSize)
	}
	return out, out.Validate()
}

// Document is the JSON document under KeyDocument.
type Document struct {
	FormatVersion int              `json:"format_version"`
	Config        Config           `json:"config"`
	Tokenizer     Tokenizer        `json:"tokenizer"`
	Tensors       map[string]Entry `json:"tensors"`
}

// Meta is the parsed, checked metadata.
type Meta struct {
	// Config is the model configuration.
	Config model.Config
	// Tokenizer says where the tokenizer is.
	Tokenizer Tokenizer
	// Tensors are the coded matrices by name.
	Tensors map[string]Entry
}

// ParseMetadata parses and checks the metadata of a native file (not the
// tensors it refers to).
func ParseMetadata(md map[string]string) (*Meta, error) {
	switch f := md[KeyFormat]; {
	case f == Marker:
	case strings.HasPrefix(f, Marker+"/"):
		return nil, fmt.Errorf("format %q is an older version of the native file that this terse no longer reads; compress the model again", f)
	default:
		return nil, fmt.Errorf("not a terse native file (format %q, want %q)", f, Marker)
	}
	var doc Document
	if err := strictJSON(md[KeyDocument], &doc); err != nil {
		return nil, fmt.Errorf("metadata %q: %w", KeyDocument, err)
	}
	switch {
	case doc.FormatVersion > Version:
		return nil, fmt.Errorf("format_version %d is newer than this terse reads (%d): upgrade terse", doc.FormatVersion, Version)
	case doc.FormatVersion != Version:
		return nil, fmt.Errorf("format_version %d, want %d", doc.FormatVersion, Version)
	}
	cfg, err := doc.Config.Model()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	m := &Meta{Config: cfg, Tokenizer: doc.Tokenizer, Tensors: doc.Tensors}
	if k := m.Tokenizer.Kind; (k != TokenizerHF && k != TokenizerLlama2c) || m.Tokenizer.Tensor == "" {
		return nil, fmt.Errorf("tokenizer: kind %q with tensor %q, want %q or %q and a tensor", k, m.Tokenizer.Tensor, TokenizerHF, TokenizerLlama2c)
	}
	if m.Tensors == nil {
		m.Tensors = map[string]Entry{}
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

// Write writes a native file: the model configuration, the tokenizer file
// (tokKind TokenizerHF or TokenizerLlama2c, tok its bytes) and the tensors
// under canonical names, each either coded (a tensor.Codebook tensor whose
// Decoder is a *kmeans.Matrix or *vq.Matrix) or float (F32, F16, BF16).
func Write(w io.Writer, cfg model.Config, tokKind string, tok []byte, ts []*tensor.Tensor) error {
	md, all, err := layout(cfg, tokKind, tok, ts)
	if err != nil {
		return err
	}
	return safetensors.Write(w, all, md)
}

// WriteFile is Write to a new file at path.
func WriteFile(path string, cfg model.Config, tokKind string, tok []byte, ts []*tensor.Tensor) error {
	md, all, err := layout(cfg, tokKind, tok, ts)
	if err != nil {
		return fmt.Errorf("native %s: %w", path, err)
	}
	return safetensors.WriteFile(path, all, md)
}

func layout(cfg model.Config, tokKind string, tok []byte, ts []*tensor.Tensor) (map[string]string, []*tensor.Tensor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if len(tok) == 0 {
		return nil, nil, fmt.Errorf("no tokenizer")
	}
	doc := Document{FormatVersion: Version, Config: ConfigOf(cfg),
		Tokenizer: Tokenizer{Kind: tokKind, Tensor: tokenizerTensor}, Tensors: map[string]Entry{}}
	all := []*tensor.Tensor{{Name: tokenizerTensor, DType: tensor.U8, Shape: []int{len(tok)}, Data: tok}}
	for _, t := range ts {
		if t.Decoder != nil {
			e, parts, err := entryOf(t)
			if err != nil {
				return nil, nil, err
			}
			doc.Tensors[t.Name] = e
			all = append(all, parts...)
			continue
		}
		if !t.DType.Float() {
			return nil, nil, fmt.Errorf("tensor %q: %s is neither coded nor F32, F16 or BF16", t.Name, t.DType)
		}
		all = append(all, t)
	}
	dj, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, err
	}
	md := map[string]string{KeyFormat: Marker, KeyDocument: string(dj)}
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
	Tensors []*tensor.Tensor
	// TokenizerData is the tokenizer file, of kind Meta.Tokenizer.Kind.
	TokenizerData []byte
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
	f.TokenizerData = tok.Data
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
