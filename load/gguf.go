package load

import (
	"fmt"

	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
	"github.com/terse-llm/terse/tokenizer"
)

// ggufArchs are the GGUF architectures whose block is the Llama block, with
// the RoPE pairing llama.cpp uses for each (its converter permutes Q and K
// of "llama" so that adjacent pairs rotate; "qwen2" keeps NEOX halves).
var ggufArchs = map[string]model.RopeStyle{
	"llama":   model.RopeInterleaved,
	"mistral": model.RopeInterleaved,
	"qwen2":   model.RopeHalf,
}

func openGGUF(path string, opt Options) (*Checkpoint, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	ck := &Checkpoint{closers: nil}
	ck.closers = append(ck.closers, f)
	if opt.Tokenizer == "" {
		t, err := tokenizer.FromGGUF(f.Metadata)
		if err != nil {
			return ck, fmt.Errorf("gguf %s: %w", path, err)
		}
		ck.Tokenizer = t
	}
	if opt.TokenizerOnly {
		return ck, nil
	}
	cfg, err := ggufConfig(f.Metadata, func(name string) bool { _, ok := f.Lookup(name); return ok })
	if err != nil {
		return ck, fmt.Errorf("gguf %s: %w", path, err)
	}
	ck.FileBytes = fileSize(path)
	for _, ti := range f.Tensors {
		t, err := f.Tensor(ti.Name)
		if err != nil {
			return ck, err
		}
		ck.Tensors = append(ck.Tensors, t)
	}
	if rf, err := f.Tensor("rope_freqs.weight"); err == nil {
		v := make([]float32, rf.NumElements())
		if err := dequant(rf, v); err != nil {
			return ck, err
		}
		ff := make([]float64, len(v))
		for i, x := range v {
			ff[i] = float64(x)
		}
		cfg.RopeScaling = &model.RopeScaling{Type: "factors", FreqFactors: ff}
	}
	m, err := model.Load(*cfg, func(name string) (*tensor.Tensor, bool, error) {
		if _, ok := f.Lookup(name); !ok {
			return nil, false, nil
		}
		t, err := f.Tensor(name)
		return t, err == nil, err
	})
	if err != nil {
		return ck, fmt.Errorf("gguf %s: %w", path, err)
	}
	ck.Model = m
	return ck, nil
}

// ggufConfig reads the model settings llama.cpp writes under "<arch>.".
func ggufConfig(md map[string]any, has func(string) bool) (*model.Config, error) {
	arch, _ := md["general.architecture"].(string)
	style, ok := ggufArchs[arch]
	if !ok {
		return nil, fmt.Errorf("architecture %q is not supported (supported: llama, mistral, qwen2)", arch)
	}
	get := func(key string, def int) (int, error) {
		v, ok := md[arch+"."+key]
		if !ok {
			if def < 0 {
				return 0, fmt.Errorf("metadata %s.%s is missing", arch, key)
			}
			return def, nil
		}
		n, ok := asInt(v)
		if !ok {
			return 0, fmt.Errorf("metadata %s.%s is %T, want an integer", arch, key, v)
		}
		return n, nil
	}
	c := &model.Config{Arch: arch, RopeStyle: style, BOS: -1, EOS: -1}
	var err error
	for _, f := range []struct {
		dst *int
		key string
		def int
	}{
		{&c.Dim, "embedding_length", -1},
		{&c.NLayers, "block_count", -1},
		{&c.FFNDim, "feed_forward_length", -1},
		{&c.NHeads, "attention.head_count", -1},
		{&c.MaxSeqLen, "context_length", 0},
	} {
		if *f.dst, err = get(f.key, f.def); err != nil {
			return nil, err
		}
	}
	if c.NHeads <= 0 {
		return nil, fmt.Errorf("metadata %s.attention.head_count must be positive", arch)
	}
	if c.NKVHeads, err = get("attention.head_count_kv", c.NHeads); err != nil {
		return nil, err
	}
	if c.HeadDim, err = get("attention.key_length", c.Dim/c.NHeads); err != nil {
		return nil, err
	}
	if toks, ok := md["tokenizer.ggml.tokens"].([]string); ok {
		c.VocabSize = len(toks)
	}
	if c.VocabSize, err = get("vocab_size", c.VocabSize); err != nil {
		return nil, err
	}
	c.NormEps = asFloat(md[arch+".attention.layer_norm_rms_epsilon"], 1e-5)
	c.RopeTheta = asFloat(md[arch+".rope.freq_base"], 10000)
	if t, _ := md[arch+".rope.scaling.type"].(string); t == "linear" {
		c.RopeScaling = &model.RopeScaling{Type: "linear", Factor: asFloat(md[arch+".rope.scaling.factor"], 1)}
	} else if t != "" && t != "none" {
		return nil, fmt.Errorf("rope scaling %q is not supported", t)
	}
	if v, ok := md["tokenizer.ggml.bos_token_id"]; ok {
		c.BOS, _ = asInt(v)
	}
	if v, ok := md["tokenizer.ggml.eos_token_id"]; ok {
		c.EOS, _ = asInt(v)
	}
	c.TiedEmbeddings = !has("output.weight")
	c.AttnBias = has("blk.0.attn_q.bias")
	if c.VocabSize == 0 {
		return nil, fmt.Errorf("vocabulary size unknown: no %s.vocab_size and no tokenizer.ggml.tokens", arch)
	}
	return c, c.Validate()
}

// asInt reads an integer metadata value, refusing sizes no model has.
func asInt(v any) (int, bool) {
	n, ok := gguf.ToInt64(v)
	if !ok || n > 1<<40 || n < -(1<<40) {
		return 0, false
	}
	return int(n), true
}

func asFloat(v any, def float64) float64 {
	switch x := v.(type) {
	case float32:
		return float64(x)
	case float64:
		return x
	}
	if n, ok := asInt(v); ok {
		return float64(n)
	}
	return def
}
