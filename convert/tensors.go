package convert

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// ggufArch is the GGUF architecture llama.cpp's converter writes for a
// model.Config architecture (Mistral checkpoints convert as "llama"), and
// the RoPE pairing llama.cpp applies to it.
func ggufArch(cfg *model.Config) (string, model.RopeStyle, error) {
	switch cfg.Arch {
	case "llama", "mistral", "":
		return "llama", model.RopeInterleaved, nil
	case "qwen2":
		return "qwen2", model.RopeHalf, nil
	}
	return "", 0, fmt.Errorf("architecture %q has no GGUF conversion (supported: llama, mistral, qwen2)", cfg.Arch)
}

// Tensors returns ck's model weights as GGUF tensors under llama.cpp's
// canonical names, in the order llama.cpp's loader and llama-quantize use
// (SortTensors). Shapes are outermost-first as everywhere in terse; the gguf
// writer reverses them.
//
// Matrices keep their stored type unless opt.Float asks for F32, F16 or
// BF16; norms and biases are F32. Where the source pairs RoPE dimensions as
// Hugging Face does (RopeHalf) and the GGUF architecture makes llama.cpp
// pair them as ggml's normal mode does (llama), the rows of attn_q and
// attn_k (and their biases) are permuted as convert_hf_to_gguf.py's
// LlamaModel.permute does; the reverse case is unpermuted. A tied model
// gets no output.weight unless opt.Untie. A llama3-scaled RoPE becomes
// rope_freqs.weight, as convert_hf_to_gguf.py writes it.
//
// Tensors that need no change alias the source's memory (often a
// memory-mapped file): keep ck open until they are written.
func Tensors(ck *load.Checkpoint, opt Options) ([]*tensor.Tensor, error) {
	if ck == nil || ck.Model == nil {
		return nil, fmt.Errorf("convert: checkpoint has no model weights (opened tokenizer-only?)")
	}
	m := ck.Model
	cfg := &m.Config
	_, style, err := ggufArch(cfg)
	if err != nil {
		return nil, err
	}
	var outType *tensor.DType
	if opt.Float != "" {
		dt, err := tensor.ParseDType(opt.Float)
		if err != nil || !dt.Float() {
			return nil, fmt.Errorf("convert: float type %q: want f32, f16 or bf16", opt.Float)
		}
		outType = &dt
	}
	matrix := func(name string, l model.Linear) (*tensor.Tensor, error) {
		t, ok := model.DenseTensor(l)
		if !ok {
			return nil, fmt.Errorf("convert: tensor %s: a %T projection has no GGUF form", name, l)
		}
		c := *t
		c.Name = name
		if outType == nil || c.DType == *outType {
			return &c, nil
		}
		out, err := castFloat(&c, *outType)
		if err != nil {
			return nil, fmt.Errorf("convert: tensor %s: %w", name, err)
		}
		return out, nil
	}
	permute := func(t *tensor.Tensor, heads int) (*tensor.Tensor, error) {
		switch {
		case cfg.RopeStyle == model.RopeHalf && style == model.RopeInterleaved:
			return permuteRows(t, heads, false)
		case cfg.RopeStyle == model.RopeInterleaved && style == model.RopeHalf:
			return permuteRows(t, heads, true)
		}
		return t, nil
	}
	vector := func(name string, v []float32) *tensor.Tensor {
		return tensor.FromFloat32(name, []int{len(v)}, v)
	}

	w := m.Weights
	var out []*tensor.Tensor
	add := func(t *tensor.Tensor, err error) error {
		if err != nil {
			return err
		}
		out = append(out, t)
		return nil
	}
	if err := add(matrix("token_embd.weight", model.NewDense(w.TokEmbd))); err != nil {
		return nil, err
	}
	out = append(out, vector("output_norm.weight", w.OutNorm))
	if !cfg.TiedEmbeddings || opt.Untie {
		if err := add(matrix("output.weight", w.Output)); err != nil {
			return nil, err
		}
	}
	if ff := ropeFactors(cfg); ff != nil {
		out = append(out, vector("rope_freqs.weight", ff))
	}
	for i := range w.Layers {
		l := &w.Layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		out = append(out, vector(p+"attn_norm.weight", l.AttnNorm), vector(p+"ffn_norm.weight", l.FFNNorm))
		q, err := matrix(p+"attn_q.weight", l.Wq)
		if err == nil {
			q, err = permute(q, cfg.NHeads)
		}
		if err := add(q, err); err != nil {
			return nil, err
		}
		k, err := matrix(p+"attn_k.weight", l.Wk)
		if err == nil {
			k, err = permute(k, cfg.NKVHeads)
		}
		if err := add(k, err); err != nil {
			return nil, err
		}
		for _, s := range []struct {
			name string
			t    model.Linear
		}{{"attn_v.weight", l.Wv}, {"attn_output.weight", l.Wo}, {"ffn_gate.weight", l.Gate}, {"ffn_up.weight", l.Up}, {"ffn_down.weight", l.Down}} {
			if err := add(matrix(p+s.name, s.t)); err != nil {
				return nil, err
			}
		}
		if model.BiasOf(l.Wq) != nil {
			if err := add(permute(vector(p+"attn_q.bias", model.BiasOf(l.Wq)), cfg.NHeads)); err != nil {
				return nil, err
			}
		}
		if model.BiasOf(l.Wk) != nil {
			if err := add(permute(vector(p+"attn_k.bias", model.BiasOf(l.Wk)), cfg.NKVHeads)); err != nil {
				return nil, err
			}
		}
		if model.BiasOf(l.Wv) != nil {
			out = append(out, vector(p+"attn_v.bias", model.BiasOf(l.Wv)))
		}
	}
	SortTensors(out)
	return out, nil
}

// SortTensors orders tensors as llama.cpp's model loader does (its
// weight_name_comparer, which llama-quantize's output follows): tensors
// outside the blocks first, then block by block, by name within each.
func SortTensors(ts []*tensor.Tensor) {
	slices.SortStableFunc(ts, func(a, b *tensor.Tensor) int {
		la, lb := blockOf(a.Name), blockOf(b.Name)
		if la != lb {
			return la - lb
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// blockOf is the block number of "blk.N...." (as sscanf "blk.%d." reads
// it), -1 for any other name.
func blockOf(name string) int {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1
	}
	n, digits := 0, 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' && n < 1<<28 {
		n = n*10 + int(rest[digits]-'0')
		digits++
	}
	if digits == 0 {
		return -1
	}
	return n
}

// permuteRows reorders the rows of each of heads consecutive head blocks of
// t (a [heads·headDim, cols] matrix or a [heads·headDim] bias). Forward, it
// is convert_hf_to_gguf.py's LlamaModel.permute: row j·headDim/2+i of a
// head (Hugging Face's rotate_half layout, j ∈ {0,1}) moves to row 2i+j
// (ggml's adjacent pairs). inverse undoes it. Rows move whole, so any
// element type, quantized ones included, is permuted exactly.
func permuteRows(t *tensor.Tensor, heads int, inverse bool) (*tensor.Tensor, error) {
	if len(t.Shape) == 0 {
		return nil, fmt.Errorf("convert: tensor %s: a scalar has no rows to permute", t.Name)
	}
	rows := t.Shape[0]
	if heads <= 0 || rows%heads != 0 || (rows/heads)%2 != 0 {
		return nil, fmt.Errorf("convert: tensor %s: %d rows do not split into %d heads of even size", t.Name, rows, heads)
	}
	rb := len(t.Data) / rows
	if rb*rows != len(t.Data) {
		return nil, fmt.Errorf("convert: tensor %s: %d bytes are not %d equal rows", t.Name, len(t.Data), rows)
	}
	hd := rows / heads
	half := hd / 2
	data := make([]byte, len(t.Data))
	for h := 0; h < heads; h++ {
		for i := 0; i < half; i++ {
			for j := 0; j < 2; j++ {
				ggmlRow := h*hd + 2*i + j
				hfRow := h*hd + j*half + i
				dst, src := ggmlRow, hfRow
				if inverse {
					dst, src = hfRow, ggmlRow
				}
				copy(data[dst*rb:(dst+1)*rb], t.Data[src*rb:(src+1)*rb])
			}
		}
	}
	c := *t
	c.Data = data
	c.Shape = slices.Clone(t.Shape)
	return &c, nil
}

// castFloat converts t to the float type dt, dequantizing a quantized t.
func castFloat(t *tensor.Tensor, dt tensor.DType) (*tensor.Tensor, error) {
	var v []float32
	switch t.DType {
	case tensor.F32:
		v = make([]float32, t.NumElements())
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	default:
		var err error
		if v, err = ggml.DequantizeTensor(t); err != nil {
			return nil, err
		}
	}
	if dt == tensor.F32 {
		return tensor.FromFloat32(t.Name, t.Shape, v), nil
	}
	b := make([]byte, 2*len(v))
	for i, x := range v {
		var h uint16
		if dt == tensor.F16 {
			h = tensor.F32ToF16(x)
		} else {
			h = tensor.F32ToBF16(x)
		}
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	return &tensor.Tensor{Name: t.Name, DType: dt, Shape: slices.Clone(t.Shape), Data: b}, nil
}

// ropeFactors returns the rope_freqs.weight values llama.cpp applies (each
// inverse frequency is divided by its factor), or nil when RoPE is
// unscaled or scaled by a rule GGUF states in metadata (linear).
func ropeFactors(cfg *model.Config) []float32 {
	s := cfg.RopeScaling
	if s == nil {
		return nil
	}
	half := cfg.HeadDim / 2
	if len(s.FreqFactors) == half {
		f := make([]float32, half)
		for i, x := range s.FreqFactors {
			f[i] = float32(x)
		}
		return f
	}
	if s.Type != "llama3" || s.Factor == 0 {
		return nil
	}
	// convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors, with the
	// inverse frequencies in float32 as torch computes them there.
	orig := float64(s.OriginalMaxPos)
	lowWavelen := orig / s.LowFreqFactor
	highWavelen := orig / s.HighFreqFactor
	f := make([]float32, half)
	for i := range f {
		freq := float64(float32(1 / math.Pow(cfg.RopeTheta, float64(float32(2*i)/float32(cfg.HeadDim)))))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			f[i] = 1
		case wavelen > lowWavelen:
			f[i] = float32(s.Factor)
		default:
			smooth := (orig/wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
			f[i] = float32(1 / ((1-smooth)/s.Factor + smooth))
		}
	}
	return f
}
