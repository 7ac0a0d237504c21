package bench

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/terse-llm/terse/compress"
	"github.com/terse-llm/terse/convert"
	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
	"github.com/terse-llm/terse/tokenizer"
)

// Shapes of random-weight models for speed tests, by name. "134m" is the
// model llama.cpp was measured on in shared/ANCHORS.md; "1b" is
// Llama-3.2-1B (tied embeddings, 128256-token vocabulary; its llama3 RoPE
// scaling is left out, as speed does not depend on it).
var Shapes = map[string]model.Config{
	"1b": {Arch: "llama", Dim: 2048, NLayers: 16, NHeads: 32, NKVHeads: 8, HeadDim: 64, FFNDim: 8192,
		VocabSize: 128256, MaxSeqLen: 131072, NormEps: 1e-5, RopeTheta: 500000, TiedEmbeddings: true, BOS: 1, EOS: 2},
	"134m": {Arch: "llama", Dim: 768, NLayers: 12, NHeads: 12, NKVHeads: 12, HeadDim: 64, FFNDim: 2048,
		VocabSize: 32000, MaxSeqLen: 2048, NormEps: 1e-5, RopeTheta: 10000, BOS: 1, EOS: 2},
	"28m": {Arch: "llama", Dim: 512, NLayers: 8, NHeads: 8, NKVHeads: 2, HeadDim: 64, FFNDim: 1536,
		VocabSize: 4096, MaxSeqLen: 1024, NormEps: 1e-5, RopeTheta: 10000, BOS: 1, EOS: 2},
}

// ShapeNames lists the known shapes.
func ShapeNames() string {
	var n []string
	for k := range Shapes {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// Random describes a random-weight model: a shape and how its matrices are
// stored. Speed does not depend on the values, only on the shapes and
// types, so the values are N(0, 0.02²) (norm weights near 1), the same for
// a given seed whether the model is built in memory (RandomModel) or
// written to a file (SaveRandom).
type Random struct {
	Shape string // a key of Shapes
	// Type is a llama.cpp file type ("Q4_K_M", "Q4_0", "F16": its
	// per-tensor mix, compress.MakePlan, without an importance matrix) or a
	// plain ggml type ("Q4_K"), which every matrix takes except the output,
	// kept at Q6_K for types under 6 bits (as llama.cpp's Q4_0 files do).
	Type string
	// OutType, when set, is the output matrix's type (for a tied model, the
	// token embedding's).
	OutType string
	Seed    uint64
}

// randomPlan is a Random resolved: the configuration, every tensor with
// its type and shape (no data), in llama.cpp's file order, and the file
// type to record.
type randomPlan struct {
	cfg      model.Config
	tensors  []*tensor.Tensor
	fileType convert.FileType
	skeleton *model.Weights // shapes and types only, for metadata
}

// plan resolves r.
func (r Random) plan() (*randomPlan, error) {
	cfg, ok := Shapes[strings.ToLower(r.Shape)]
	if !ok {
		return nil, fmt.Errorf("unknown model shape %q (known: %s)", r.Shape, ShapeNames())
	}
	head := func(name string, dt tensor.DType, shape ...int) *tensor.Tensor {
		return &tensor.Tensor{Name: name, DType: dt, Shape: shape}
	}
	qDim, kvDim := cfg.NHeads*cfg.HeadDim, cfg.NKVHeads*cfg.HeadDim
	w := &model.Weights{TokEmbd: head("token_embd.weight", tensor.F32, cfg.VocabSize, cfg.Dim), OutNorm: make([]float32, cfg.Dim)}
	w.Output = model.NewDense(w.TokEmbd)
	if !cfg.TiedEmbeddings {
		w.Output = model.NewDense(head("output.weight", tensor.F32, cfg.VocabSize, cfg.Dim))
	}
	dense := func(l, name string, rows, cols int) model.Linear {
		return model.NewDense(head(l+name, tensor.F32, rows, cols))
	}
	for l := 0; l < cfg.NLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		w.Layers = append(w.Layers, model.Layer{
			Wq: dense(p, "attn_q.weight", qDim, cfg.Dim), Wk: dense(p, "attn_k.weight", kvDim, cfg.Dim),
			Wv: dense(p, "attn_v.weight", kvDim, cfg.Dim), Wo: dense(p, "attn_output.weight", cfg.Dim, qDim),
			Gate: dense(p, "ffn_gate.weight", cfg.FFNDim, cfg.Dim), Up: dense(p, "ffn_up.weight", cfg.FFNDim, cfg.Dim),
			Down: dense(p, "ffn_down.weight", cfg.Dim, cfg.FFNDim),
		})
	}
	outName := "output.weight"
	if cfg.TiedEmbeddings {
		outName = "token_embd.weight"
	}

	var plan compress.Plan
	var ft convert.FileType
	if p, ok := compress.Presets[strings.ToUpper(r.Type)]; ok {
		plan = compress.MakePlan(&cfg, w, p, false, nil)
		ft = convert.FileType(p.FileType)
	} else {
		dt, err := tensor.ParseDType(r.Type)
		if err != nil {
			return nil, fmt.Errorf("--type %q: not a llama.cpp file type (%s) or a ggml type: %w", r.Type, compress.PresetNames(), err)
		}
		plan = compress.Plan{}
		for _, m := range w.Matrices() {
			plan[m.Name] = dt
		}
		if dt.Quantized() && dt.BitsPerWeight() < 6 {
			plan[outName] = tensor.Q6_K
		}
		if ft, err = convert.FileTypeOf(dt); err != nil {
			ft = convert.FileTypeAllF32 // recorded only; a type llama.cpp names no recipe for
		}
	}
	if r.OutType != "" {
		dt, err := tensor.ParseDType(r.OutType)
		if err != nil {
			return nil, fmt.Errorf("--output-type %q: %w", r.OutType, err)
		}
		plan[outName] = dt
	}
	if err := plan.Check(r.Type, false); err != nil {
		return nil, err
	}
	rp := &randomPlan{cfg: cfg, fileType: ft, skeleton: w}
	for _, m := range w.Matrices() {
		m.DType = plan[m.Name]
		if _, err := m.DType.RowBytes(m.Cols()); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", m.Name, err)
		}
		rp.tensors = append(rp.tensors, m)
	}
	rp.tensors = append(rp.tensors, head("output_norm.weight", tensor.F32, cfg.Dim))
	for l := 0; l < cfg.NLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		rp.tensors = append(rp.tensors, head(p+"attn_norm.weight", tensor.F32, cfg.Dim), head(p+"ffn_norm.weight", tensor.F32, cfg.Dim))
	}
	convert.SortTensors(rp.tensors)
	return rp, nil
}

// Name labels the model in results: "random-1b Q4_K_M".
func (r Random) Name() string { return fmt.Sprintf("random-%s %s", strings.ToLower(r.Shape), r.Type) }

// RandomModel builds the random-weight model r describes, in memory.
func RandomModel(r Random) (*model.Model, error) {
	rp, err := r.plan()
	if err != nil {
		return nil, err
	}
	tensors := map[string]*tensor.Tensor{}
	for _, t := range rp.tensors {
		data, err := randomData(t, r.Seed, nil)
		if err != nil {
			return nil, err
		}
		tensors[t.Name] = &tensor.Tensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: data}
	}
	return model.Load(rp.cfg, func(name string) (*tensor.Tensor, bool, error) {
		t, ok := tensors[name]
		return t, ok, nil
	})
}

// SaveRandom writes the random-weight model r describes to a GGUF file at
// path that llama.cpp and terse both load: llama.cpp's metadata for the
// shape, a synthetic SentencePiece vocabulary of the shape's size (byte
// pieces and numbered words; its text means nothing) and the tensors in
// llama.cpp's order, each generated as it is written, so memory holds one
// tensor at a time. It returns the bytes written.
func SaveRandom(path string, r Random) (int64, error) {
	rp, err := r.plan()
	if err != nil {
		return 0, err
	}
	tok, err := syntheticVocab(rp.cfg.VocabSize)
	if err != nil {
		return 0, err
	}
	ck := &load.Checkpoint{Path: path, Format: load.Llama2c, Tokenizer: tok,
		Model: &model.Model{Config: rp.cfg, Weights: rp.skeleton}}
	meta, err := convert.Metadata(ck, rp.fileType, convert.Options{Name: r.Name()})
	if err != nil {
		return 0, fmt.Errorf("save %s: %w", path, err)
	}
	var buf []byte
	var total int64
	err = gguf.WriteFileStream(path, meta, rp.tensors, func(i int) ([]byte, error) {
		b, err := randomData(rp.tensors[i], r.Seed, buf)
		if cap(b) > cap(buf) {
			buf = b
		}
		total += int64(len(b))
		return b, err
	})
	return total, err
}

// syntheticVocab is a llama2.c tokenizer of n pieces: <unk>, <s>, </s>,
// the 256 byte pieces, then " w3", " w4", … with falling scores.
func syntheticVocab(n int) (*tokenizer.Llama2c, error) {
	if n < 259 {
		return nil, fmt.Errorf("synthetic vocabulary: %d tokens, need at least 259", n)
	}
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0)
	maxLen := 0
	for i := 0; i < n; i++ {
		var p string
		switch {
		case i == 0:
			p = "<unk>"
		case i == 1:
			p = "<s>"
		case i == 2:
			p = "</s>"
		case i < 259:
			p = fmt.Sprintf("<0x%02X>", i-3)
		default:
			p = fmt.Sprintf(" w%d", i)
		}
		maxLen = max(maxLen, len(p))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(-float32(i)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	binary.LittleEndian.PutUint32(b, uint32(maxLen))
	return tokenizer.ParseLlama2c("synthetic vocabulary", b)
}

// randomData fills tensor t (type and shape) with N(0, 0.02²) values, or
// 1 + N(0, 0.1²) for vectors (norms), stored as t.DType, quantizing rows in
// parallel. The values depend on seed and t's name only. buf is reused
// when it is large enough.
func randomData(t *tensor.Tensor, seed uint64, buf []byte) ([]byte, error) {
	size, err := t.ByteSize()
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	rows, cols := 1, t.Shape[len(t.Shape)-1]
	if len(t.Shape) == 2 {
		rows = t.Shape[0]
	}
	rb, err := t.DType.RowBytes(cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	out := buf[:size]
	h := fnv.New64a()
	h.Write([]byte(t.Name))
	key := h.Sum64()
	errs := make([]error, rows)
	kernel.Parallel(rows, func(lo, hi int) {
		row := make([]float32, cols)
		for r := lo; r < hi; r++ {
			rng := rand.New(rand.NewPCG(seed^key, uint64(r)))
			for i := range row {
				if rows == 1 {
					row[i] = 1 + 0.1*float32(rng.NormFloat64())
				} else {
					row[i] = 0.02 * float32(rng.NormFloat64())
				}
			}
			if err := ggml.Quantize(t.DType, row, out[r*rb:(r+1)*rb], nil); err != nil {
				errs[r] = err
				return
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
	}
	return out, nil
}
