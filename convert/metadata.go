package convert

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/load"
)

// QuantizationVersion is general.quantization_version: the version of
// ggml's block layouts (2 since ggml's May 2023 change; every current
// llama.cpp file holds 2).
const QuantizationVersion = 2

// Metadata returns the GGUF key/values for ck, as llama.cpp's
// convert_hf_to_gguf.py writes them, with general.file_type ft:
//
//   - general.architecture ("llama" for Llama, Mistral and llama2.c
//     models, "qwen2"), general.type, general.name;
//   - <arch>.block_count, context_length, embedding_length,
//     feed_forward_length, attention.head_count, attention.head_count_kv,
//     rope.freq_base, attention.layer_norm_rms_epsilon,
//     attention.key_length and value_length (when head_dim differs from
//     embedding_length/head_count, or a Hugging Face config.json or source
//     GGUF states it), vocab_size, rope.dimension_count, and for linear RoPE
//     scaling rope.scaling.type and rope.scaling.factor (llama3 scaling is
//     the rope_freqs.weight tensor, see Tensors);
//   - the vocabulary (see vocabulary): a byte-level BPE from tokenizer.json
//     as tokenizer.ggml.model "gpt2", a llama2.c tokenizer.bin as "llama",
//     and a GGUF source's tokenizer.* keys copied as they are;
//   - general.quantization_version and general.file_type last, where
//     llama-quantize puts them.
//
// Differences from llama.cpp's own files, all without effect on how
// llama.cpp runs the model: general.basename and general.size_label
// (convert_hf_to_gguf.py's naming heuristics) are not written. For a
// llama2.c source, llama.cpp's llama2.c converter omits rope.freq_base,
// vocab_size and add_bos_token (llama.cpp then assumes 10000, the token
// count and true, which are the values written here) and writes
// seperator_token_id and padding_token_id as 4294967295 ("none"), which are
// omitted here, meaning the same; its general.name is "llama".
func Metadata(ck *load.Checkpoint, ft FileType, opt Options) ([]gguf.KV, error) {
	if ck == nil || ck.Model == nil {
		return nil, fmt.Errorf("convert: checkpoint has no model (opened tokenizer-only?)")
	}
	cfg := &ck.Model.Config
	arch, _, err := ggufArch(cfg)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", ck.Path, err)
	}
	src, err := readSource(ck)
	if err != nil {
		return nil, err
	}
	name := opt.Name
	if name == "" {
		name = src.name
	}
	md := []gguf.KV{
		{Key: "general.architecture", Value: arch},
		{Key: "general.type", Value: "model"},
		{Key: "general.name", Value: name},
	}
	a := func(key string, v any) { md = append(md, gguf.KV{Key: arch + "." + key, Value: v}) }
	a("block_count", uint32(cfg.NLayers))
	a("context_length", uint32(cfg.MaxSeqLen))
	a("embedding_length", uint32(cfg.Dim))
	a("feed_forward_length", uint32(cfg.FFNDim))
	a("attention.head_count", uint32(cfg.NHeads))
	a("attention.head_count_kv", uint32(cfg.NKVHeads))
	a("rope.freq_base", float32(cfg.RopeTheta))
	a("attention.layer_norm_rms_epsilon", float32(cfg.NormEps))
	if src.explicitHeadDim || cfg.HeadDim*cfg.NHeads != cfg.Dim {
		a("attention.key_length", uint32(cfg.HeadDim))
		a("attention.value_length", uint32(cfg.HeadDim))
	}
	a("vocab_size", uint32(cfg.VocabSize))
	a("rope.dimension_count", uint32(cfg.HeadDim))
	if s := cfg.RopeScaling; s != nil && s.Type == "linear" && len(s.FreqFactors) == 0 {
		a("rope.scaling.type", "linear")
		a("rope.scaling.factor", float32(s.Factor))
	}
	voc, err := vocabulary(ck, src, opt)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", ck.Path, err)
	}
	md = append(md, voc...)
	md = append(md,
		gguf.KV{Key: "general.quantization_version", Value: uint32(QuantizationVersion)},
		gguf.KV{Key: "general.file_type", Value: uint32(ft)})
	return md, nil
}

// source is what Metadata reads from the checkpoint's files beyond the
// model.Config and the tokenizer.
type source struct {
	name            string
	explicitHeadDim bool // config.json or the GGUF states head_dim
	// Hugging Face tokenizer_config.json settings (nil when absent).
	addBOS, addEOS *bool
	bosNull        bool // bos_token is null
	// ggufKVs are a GGUF source's metadata, in file order.
	ggufKVs []gguf.KV
}

func readSource(ck *load.Checkpoint) (*source, error) {
	s := &source{name: strings.TrimSuffix(filepath.Base(ck.Path), filepath.Ext(ck.Path))}
	switch ck.Format {
	case load.HF:
		var cfg struct {
			HeadDim *int `json:"head_dim"`
		}
		p := filepath.Join(ck.Path, "config.json")
		if b, err := os.ReadFile(p); err == nil {
			if err := json.Unmarshal(b, &cfg); err != nil {
				return nil, fmt.Errorf("convert %s: %w", p, err)
			}
			s.explicitHeadDim = cfg.HeadDim != nil
		}
		var tc struct {
			AddBOS   *bool           `json:"add_bos_token"`
			AddEOS   *bool           `json:"add_eos_token"`
			BOSToken json.RawMessage `json:"bos_token"`
		}
		p = filepath.Join(ck.Path, "tokenizer_config.json")
		if b, err := os.ReadFile(p); err == nil {
			if err := json.Unmarshal(b, &tc); err != nil {
				return nil, fmt.Errorf("convert %s: %w", p, err)
			}
			s.addBOS, s.addEOS = tc.AddBOS, tc.AddEOS
			s.bosNull = string(tc.BOSToken) == "null"
		}
	case load.GGUF:
		f, err := gguf.Open(ck.Path)
		if err != nil {
			return nil, fmt.Errorf("convert: %w", err)
		}
		defer f.Close()
		s.ggufKVs = f.KVs()
		if n, ok := f.String("general.name"); ok && n != "" {
			s.name = n
		}
		arch, _ := f.String("general.architecture")
		_, s.explicitHeadDim = f.Value(arch + ".attention.key_length")
	}
	return s, nil
}
