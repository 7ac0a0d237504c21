package compress

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/terse-llm/terse/format/native"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
	"github.com/terse-llm/terse/tokenizer"
)

// nativeTensors lists m's tensors under canonical names for a native file:
// matrices as stored, vectors as F32. This is the one place compress reads
// the fields of model.Layer.
func nativeTensors(m *model.Model) ([]*tensor.Tensor, error) {
	var out []*tensor.Tensor
	var err error
	mat := func(l model.Linear) {
		t, ok := model.DenseTensor(l)
		if !ok && err == nil {
			err = fmt.Errorf("tensor %q: a %T projection has no native form", l.Name(), l)
		}
		if ok {
			out = append(out, t)
		}
	}
	vec := func(name string, v []float32) {
		if v != nil {
			out = append(out, tensor.FromFloat32(name, []int{len(v)}, v))
		}
	}
	w := m.Weights
	out = append(out, w.TokEmbd)
	for i := range w.Layers {
		l := &w.Layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		vec(p+"attn_norm.weight", l.AttnNorm)
		for _, t := range []model.Linear{l.Wq, l.Wk, l.Wv, l.Wo} {
			mat(t)
		}
		vec(p+"attn_q.bias", model.BiasOf(l.Wq))
		vec(p+"attn_k.bias", model.BiasOf(l.Wk))
		vec(p+"attn_v.bias", model.BiasOf(l.Wv))
		vec(p+"ffn_norm.weight", l.FFNNorm)
		for _, t := range []model.Linear{l.Gate, l.Up, l.Down} {
			mat(t)
		}
	}
	vec("output_norm.weight", w.OutNorm)
	if !w.Tied() {
		mat(w.Output)
	}
	return out, err
}

// nativePlan codes the matrices of the transformer blocks; the embedding
// and the output projection stay float (widened to F32 when the source
// stores them quantized, as a native file holds only float or coded
// tensors). Overrides may keep a block matrix float too: a float type
// (F32, F16, BF16) or CODEBOOK; anything else is an error.
func nativePlan(ts []*tensor.Tensor, overrides []Override) (Plan, error) {
	plan := Plan{}
	for _, t := range ts {
		if len(t.Shape) != 2 {
			continue
		}
		switch {
		case strings.HasPrefix(t.Name, "blk."):
			plan[t.Name] = tensor.Codebook
		case t.Decoder != nil || !t.DType.Float():
			plan[t.Name] = tensor.F32
		}
	}
	for _, o := range overrides {
		if !o.Type.Float() && o.Type != tensor.Codebook {
			return nil, fmt.Errorf("override %s=%s: a native file holds float or codebook matrices, not %s", o.Pattern, o.Type, o.Type)
		}
		for _, t := range ts {
			if len(t.Shape) == 2 && o.Pattern.MatchString(t.Name) {
				plan[t.Name] = o.Type
			}
		}
	}
	return plan, nil
}

// tokenizerFile is the tokenizer ck's native file embeds: its kind and bytes.
func tokenizerFile(ck *load.Checkpoint) (string, []byte, error) {
	switch ck.Format {
	case load.HF:
		b, err := os.ReadFile(filepath.Join(ck.Path, "tokenizer.json"))
		if err != nil {
			return "", nil, err
		}
		return native.TokenizerHF, b, nil
	case load.Native:
		f, err := native.Open(ck.Path)
		if err != nil {
			return "", nil, err
		}
		defer f.Close()
		return f.Meta.Tokenizer.Kind, append([]byte(nil), f.TokenizerData...), nil
	}
	if t, ok := ck.Tokenizer.(*tokenizer.Llama2c); ok {
		return native.TokenizerLlama2c, llama2cBytes(t), nil
	}
	return "", nil, fmt.Errorf("%s is a %s checkpoint; a native file embeds a Hugging Face tokenizer.json or a llama2.c tokenizer.bin, so compress from a Hugging Face folder", ck.Path, ck.Format)
}

// llama2cBytes writes t back in llama2.c's tokenizer.bin layout (int32
// max_token_length, then per token float32 score, int32 length, bytes),
// which tokenizer.ParseLlama2c reads as t.
func llama2cBytes(t *tokenizer.Llama2c) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(t.MaxTokenLength()))
	for id := 0; id < t.VocabSize(); id++ {
		p := t.Piece(id)
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(t.Score(id)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}
