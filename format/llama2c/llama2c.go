// Package llama2c reads the checkpoint format of Andrej Karpathy's llama2.c
// (https://github.com/karpathy/llama2.c, the "legacy" export that run.c
// reads): a header of seven little-endian int32s
//
//	dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//
// (a negative vocab_size means the classifier is not shared with the token
// embedding) followed by float32 arrays, each row-major with the output
// dimension outermost, as run.c's matmul (out = W·x, W stored [out][in])
// expects:
//
//	token_embedding [vocab][dim]
//	rms_att         [layers][dim]
//	wq              [layers][n_heads·head_size][dim]
//	wk, wv          [layers][n_kv_heads·head_size][dim]
//	wo              [layers][dim][n_heads·head_size]
//	rms_ffn         [layers][dim]
//	w1, w3          [layers][hidden_dim][dim]
//	w2              [layers][dim][hidden_dim]
//	rms_final       [dim]
//	freq_cis_real, freq_cis_imag [seq_len][head_size/2] (unused: RoPE is recomputed)
//	wcls            [vocab][dim] (only when not shared)
//
// Load memory-maps the file and returns the weights under llama.cpp's
// canonical GGUF names, aliasing the mapping. llama2.c applies RoPE to
// adjacent pairs (2i, 2i+1), model.RopeInterleaved.
package llama2c

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/terse-llm/terse/internal/mmap"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
)

// HeaderSize is the size of the legacy header: seven int32s.
const HeaderSize = 7 * 4

// versionMagic starts the newer llama2.c export formats ("ak42"), which
// run.c does not read.
const versionMagic = 0x616b3432

// Header is a checkpoint's header.
type Header struct {
	Dim, HiddenDim, NLayers, NHeads, NKVHeads, VocabSize, SeqLen int
	// SharedClassifier reports that the output projection is the token
	// embedding (the stored vocab_size was positive).
	SharedClassifier bool
}

// Checkpoint is an opened llama2.c checkpoint.
type Checkpoint struct {
	Header Header
	// Config describes the model for the forward pass.
	Config model.Config

	path    string
	m       *mmap.Map // nil for Parse
	tensors []*tensor.Tensor
	byName  map[string]*tensor.Tensor
}

// Load memory-maps and parses the checkpoint at path. The tensors alias the
// mapping: they are read-only and valid until Close.
func Load(path string) (*Checkpoint, error) {
	m, err := mmap.Open(path)
	if err != nil {
		return nil, fmt.Errorf("llama2c %s: %w", path, err)
	}
	c, err := parse(path, m.Data())
	if err != nil {
		m.Close()
		return nil, err
	}
	c.m = m
	return c, nil
}

// Parse parses a whole checkpoint held in memory; the tensors alias data.
func Parse(data []byte) (*Checkpoint, error) { return parse("<memory>", data) }

func parse(path string, data []byte) (*Checkpoint, error) {
	c := &Checkpoint{path: path, byName: map[string]*tensor.Tensor{}}
	h, err := readHeader(data)
	if err != nil {
		return nil, fmt.Errorf("llama2c %s: %w", path, err)
	}
	c.Header = h
	if err := c.build(data); err != nil {
		return nil, fmt.Errorf("llama2c %s: %w", path, err)
	}
	c.Config = model.Config{
		Arch:           "llama",
		Dim:            h.Dim,
		NLayers:        h.NLayers,
		NHeads:         h.NHeads,
		NKVHeads:       h.NKVHeads,
		HeadDim:        h.Dim / h.NHeads,
		FFNDim:         h.HiddenDim,
		VocabSize:      h.VocabSize,
		MaxSeqLen:      h.SeqLen,
		NormEps:        1e-5,
		RopeTheta:      10000,
		RopeStyle:      model.RopeInterleaved,
		TiedEmbeddings: h.SharedClassifier,
		BOS:            1,
		EOS:            2,
	}
	if err := c.Config.Validate(); err != nil {
		return nil, fmt.Errorf("llama2c %s: %w", path, err)
	}
	return c, nil
}

// maxDim bounds each header field so that size arithmetic cannot overflow.
const maxDim = 1 << 24

func readHeader(data []byte) (Header, error) {
	if len(data) >= 4 && binary.LittleEndian.Uint32(data) == versionMagic {
		return Header{}, errors.New(`this is a newer llama2.c export (magic "ak42"); only the legacy format that run.c reads is supported: export with --version 0`)
	}
	if len(data) < HeaderSize {
		return Header{}, fmt.Errorf("file of %d bytes is too short for the %d-byte header", len(data), HeaderSize)
	}
	var v [7]int64
	for i := range v {
		v[i] = int64(int32(binary.LittleEndian.Uint32(data[4*i:])))
	}
	h := Header{
		Dim: int(v[0]), HiddenDim: int(v[1]), NLayers: int(v[2]), NHeads: int(v[3]),
		NKVHeads: int(v[4]), VocabSize: int(v[5]), SeqLen: int(v[6]),
		SharedClassifier: v[5] > 0,
	}
	if h.VocabSize < 0 {
		h.VocabSize = -h.VocabSize
	}
	fields := []struct {
		name string
		v    int
	}{
		{"dim", h.Dim}, {"hidden_dim", h.HiddenDim}, {"n_layers", h.NLayers}, {"n_heads", h.NHeads},
		{"n_kv_heads", h.NKVHeads}, {"vocab_size", h.VocabSize}, {"seq_len", h.SeqLen},
	}
	for _, f := range fields {
		if f.v <= 0 || f.v > maxDim {
			return Header{}, fmt.Errorf("header: %s %d is out of range (1..%d)", f.name, f.v, maxDim)
		}
	}
	switch {
	case h.Dim%h.NHeads != 0:
		return Header{}, fmt.Errorf("header: dim %d is not a multiple of n_heads %d", h.Dim, h.NHeads)
	case (h.Dim/h.NHeads)%2 != 0:
		return Header{}, fmt.Errorf("header: head size %d is odd", h.Dim/h.NHeads)
	case h.NKVHeads > h.NHeads || h.NHeads%h.NKVHeads != 0:
		return Header{}, fmt.Errorf("header: n_heads %d is not a multiple of n_kv_heads %d", h.NHeads, h.NKVHeads)
	}
	return h, nil
}

// FileSize returns the exact size in bytes that a checkpoint with header h
// has.
func (h Header) FileSize() int64 {
	dim, hid, l, vocab := int64(h.Dim), int64(h.HiddenDim), int64(h.NLayers), int64(h.VocabSize)
	hs := dim / int64(h.NHeads)
	kv := hs * int64(h.NKVHeads)
	n := vocab*dim + // token_embedding
		l*dim + // rms_att
		l*dim*dim + // wq
		2*l*kv*dim + // wk, wv
		l*dim*dim + // wo
		l*dim + // rms_ffn
		3*l*hid*dim + // w1, w2, w3
		dim + // rms_final
		int64(h.SeqLen)*hs // freq_cis_real and _imag, seq_len·head_size/2 each
	if !h.SharedClassifier {
		n += vocab * dim
	}
	return HeaderSize + 4*n
}

// build checks the file size and slices out the tensors.
func (c *Checkpoint) build(data []byte) error {
	h := c.Header
	// Each factor is below 2^24, so a product of three is below 2^72 —
	// too big for int64 only in theory; check before multiplying.
	if float64(h.NLayers)*float64(h.Dim)*(2*float64(h.Dim)+3*float64(h.HiddenDim)) > 1<<60 ||
		float64(h.VocabSize)*float64(h.Dim) > 1<<60 || float64(h.SeqLen)*float64(h.Dim) > 1<<60 {
		return fmt.Errorf("header: dimensions %+v are implausibly large", h)
	}
	if want := h.FileSize(); int64(len(data)) != want {
		shared := "shared"
		if !h.SharedClassifier {
			shared = "separate"
		}
		return fmt.Errorf("file is %d bytes, but its header (dim %d, hidden %d, %d layers, %d heads, %d KV heads, vocab %d, seq_len %d, %s classifier) needs exactly %d",
			len(data), h.Dim, h.HiddenDim, h.NLayers, h.NHeads, h.NKVHeads, h.VocabSize, h.SeqLen, shared, want)
	}
	dim, hid, kv := h.Dim, h.HiddenDim, h.Dim/h.NHeads*h.NKVHeads
	off := HeaderSize
	// take returns count float32s from the current offset.
	take := func(count int) []byte {
		b := data[off : off+4*count : off+4*count]
		off += 4 * count
		return b
	}
	// perLayer splits one array of n_layers matrices [rows][cols] into
	// tensors named blk.N.<suffix>.
	perLayer := func(suffix string, shape ...int) error {
		per := 1
		for _, d := range shape {
			per *= d
		}
		for l := 0; l < h.NLayers; l++ {
			if err := c.add(fmt.Sprintf("blk.%d.%s", l, suffix), shape, take(per)); err != nil {
				return err
			}
		}
		return nil
	}
	steps := []func() error{
		func() error { return c.add("token_embd.weight", []int{h.VocabSize, dim}, take(h.VocabSize*dim)) },
		func() error { return perLayer("attn_norm.weight", dim) },
		func() error { return perLayer("attn_q.weight", dim, dim) },
		func() error { return perLayer("attn_k.weight", kv, dim) },
		func() error { return perLayer("attn_v.weight", kv, dim) },
		func() error { return perLayer("attn_output.weight", dim, dim) },
		func() error { return perLayer("ffn_norm.weight", dim) },
		func() error { return perLayer("ffn_gate.weight", hid, dim) },
		func() error { return perLayer("ffn_down.weight", dim, hid) },
		func() error { return perLayer("ffn_up.weight", hid, dim) },
		func() error { return c.add("output_norm.weight", []int{dim}, take(dim)) },
		func() error { take(h.SeqLen * (dim / h.NHeads)); return nil }, // freq_cis_real, freq_cis_imag
		func() error {
			if h.SharedClassifier {
				return nil
			}
			return c.add("output.weight", []int{h.VocabSize, dim}, take(h.VocabSize*dim))
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	if off != len(data) {
		return fmt.Errorf("internal error: read %d of %d bytes", off, len(data))
	}
	// Canonical order: as GGUF lists them, blocks in order.
	order := func(t *tensor.Tensor) int {
		switch t.Name {
		case "token_embd.weight":
			return -3
		case "output_norm.weight":
			return -2
		case "output.weight":
			return -1
		}
		var l int
		fmt.Sscanf(t.Name, "blk.%d.", &l)
		return l
	}
	slices.SortStableFunc(c.tensors, func(a, b *tensor.Tensor) int { return order(a) - order(b) })
	return nil
}

func (c *Checkpoint) add(name string, shape []int, data []byte) error {
	t, err := tensor.New(name, tensor.F32, shape, data)
	if err != nil {
		return err
	}
	c.tensors = append(c.tensors, t)
	c.byName[name] = t
	return nil
}

// Path returns the checkpoint's path.
func (c *Checkpoint) Path() string { return c.path }

// Tensors returns every weight: token_embd.weight, output_norm.weight,
// output.weight (only with a separate classifier), then each block's.
func (c *Checkpoint) Tensors() []*tensor.Tensor { return slices.Clone(c.tensors) }

// Names returns the tensor names in the order of Tensors.
func (c *Checkpoint) Names() []string {
	names := make([]string, len(c.tensors))
	for i, t := range c.tensors {
		names[i] = t.Name
	}
	return names
}

// Tensor returns the named weight and whether it exists.
func (c *Checkpoint) Tensor(name string) (*tensor.Tensor, bool) {
	t, ok := c.byName[name]
	return t, ok
}

// Close releases the mapping; the tensors become invalid.
func (c *Checkpoint) Close() error {
	c.tensors, c.byName = nil, map[string]*tensor.Tensor{}
	if c.m == nil {
		return nil
	}
	m := c.m
	c.m = nil
	return m.Close()
}
