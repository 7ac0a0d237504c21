package hf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/model"
)

// llama2 is a Llama 2 7B config.json as transformers 4 wrote it.
const llama2 = `{
  "architectures": ["LlamaForCausalLM"],
  "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
  "intermediate_size": 11008, "max_position_embeddings": 4096,
  "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 32, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": null, "rope_theta": 10000.0, "tie_word_embeddings": false,
  "torch_dtype": "float16", "transformers_version": "4.31.0", "use_cache": true,
  "vocab_size": 32000
}`

// llama32 is a Llama 3.2 1B config.json (llama3 rope scaling, tied, eos list).
const llama32 = `{
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 8192,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "vocab_size": 128256
}`

// mistral is Mistral 7B v0.1's config.json.
const mistral = `{
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
  "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 32000
}`

// qwen2 is Qwen2.5 0.5B's config.json.
const qwen2 = `{
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu",
  "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
  "max_position_embeddings": 32768, "max_window_layers": 24, "model_type": "qwen2",
  "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 151936
}`

// tf5 is a transformers 5 style config: rope_parameters, dtype, null head_dim and ids.
const tf5 = `{
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": null,
  "dtype": "bfloat16", "eos_token_id": null, "head_dim": null, "hidden_act": "silu",
  "hidden_size": 256, "intermediate_size": 768, "max_position_embeddings": 8192,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 4,
  "num_hidden_layers": 2, "num_key_value_heads": null, "rms_norm_eps": 1e-05,
  "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0,
    "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
  "tie_word_embeddings": false, "transformers_version": "5.0.0", "vocab_size": 1000
}`

// minimal leaves every optional field to its default.
const minimal = `{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100}`

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		json string
		want model.Config
	}{
		{"llama2", llama2, model.Config{Arch: "llama", Dim: 4096, NLayers: 32, NHeads: 32, NKVHeads: 32, HeadDim: 128,
			FFNDim: 11008, VocabSize: 32000, MaxSeqLen: 4096, NormEps: 1e-5, RopeTheta: 10000, RopeStyle: model.RopeHalf,
			BOS: 1, EOS: 2}},
		{"llama3.2", llama32, model.Config{Arch: "llama", Dim: 2048, NLayers: 16, NHeads: 32, NKVHeads: 8, HeadDim: 64,
			FFNDim: 8192, VocabSize: 128256, MaxSeqLen: 131072, NormEps: 1e-5, RopeTheta: 500000, RopeStyle: model.RopeHalf,
			RopeScaling:    &model.RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 8192},
			TiedEmbeddings: true, BOS: 128000, EOS: 128001}},
		{"mistral", mistral, model.Config{Arch: "mistral", Dim: 4096, NLayers: 32, NHeads: 32, NKVHeads: 8, HeadDim: 128,
			FFNDim: 14336, VocabSize: 32000, MaxSeqLen: 32768, NormEps: 1e-5, RopeTheta: 10000, RopeStyle: model.RopeHalf,
			SlidingWindow: 4096, BOS: 1, EOS: 2}},
		{"qwen2", qwen2, model.Config{Arch: "qwen2", Dim: 896, NLayers: 24, NHeads: 14, NKVHeads: 2, HeadDim: 64,
			FFNDim: 4864, VocabSize: 151936, MaxSeqLen: 32768, NormEps: 1e-6, RopeTheta: 1e6, RopeStyle: model.RopeHalf,
			TiedEmbeddings: true, AttnBias: true, BOS: 151643, EOS: 151643}},
		{"transformers 5", tf5, model.Config{Arch: "llama", Dim: 256, NLayers: 2, NHeads: 4, NKVHeads: 4, HeadDim: 64,
			FFNDim: 768, VocabSize: 1000, MaxSeqLen: 8192, NormEps: 1e-5, RopeTheta: 500000, RopeStyle: model.RopeHalf,
			RopeScaling: &model.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 8192},
			BOS:         -1, EOS: -1}},
		{"defaults", minimal, model.Config{Arch: "llama", Dim: 64, NLayers: 2, NHeads: 4, NKVHeads: 4, HeadDim: 16,
			FFNDim: 128, VocabSize: 100, MaxSeqLen: 2048, NormEps: 1e-6, RopeTheta: 10000, RopeStyle: model.RopeHalf,
			BOS: -1, EOS: -1}},
		{"linear scaling, old type key", strings.Replace(minimal, `"vocab_size"`, `"rope_scaling": {"type": "linear", "factor": 2.0}, "vocab_size"`, 1),
			model.Config{Arch: "llama", Dim: 64, NLayers: 2, NHeads: 4, NKVHeads: 4, HeadDim: 16,
				FFNDim: 128, VocabSize: 100, MaxSeqLen: 2048, NormEps: 1e-6, RopeTheta: 10000, RopeStyle: model.RopeHalf,
				RopeScaling: &model.RopeScaling{Type: "linear", Factor: 2}, BOS: -1, EOS: -1}},
		{"explicit head_dim", strings.Replace(minimal, `"vocab_size"`, `"head_dim": 32, "vocab_size"`, 1),
			model.Config{Arch: "llama", Dim: 64, NLayers: 2, NHeads: 4, NKVHeads: 4, HeadDim: 32,
				FFNDim: 128, VocabSize: 100, MaxSeqLen: 2048, NormEps: 1e-6, RopeTheta: 10000, RopeStyle: model.RopeHalf,
				BOS: -1, EOS: -1}},
		{"qwen2 sliding window on", strings.Replace(qwen2, `"use_sliding_window": false`, `"use_sliding_window": true`, 1),
			model.Config{Arch: "qwen2", Dim: 896, NLayers: 24, NHeads: 14, NKVHeads: 2, HeadDim: 64,
				FFNDim: 4864, VocabSize: 151936, MaxSeqLen: 32768, NormEps: 1e-6, RopeTheta: 1e6, RopeStyle: model.RopeHalf,
				TiedEmbeddings: true, AttnBias: true, SlidingWindow: 32768, BOS: 151643, EOS: 151643}},
		{"empty eos list", strings.Replace(minimal, `"vocab_size"`, `"eos_token_id": [], "bos_token_id": [5], "vocab_size"`, 1),
			model.Config{Arch: "llama", Dim: 64, NLayers: 2, NHeads: 4, NKVHeads: 4, HeadDim: 16,
				FFNDim: 128, VocabSize: 100, MaxSeqLen: 2048, NormEps: 1e-6, RopeTheta: 10000, RopeStyle: model.RopeHalf,
				BOS: 5, EOS: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
				if got.RopeScaling != nil {
					t.Errorf("scaling %+v", *got.RopeScaling)
				}
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	with := func(base, field string) string {
		return strings.Replace(base, `"vocab_size"`, field+`, "vocab_size"`, 1)
	}
	without := func(base, field string) string {
		return strings.Replace(base, field, `"unused_`+field[1:], 1)
	}
	for _, tc := range []struct {
		name, json, want string
	}{
		{"gemma", `{"model_type": "gemma", "hidden_size": 64}`, `model_type "gemma" is not supported; supported: llama, mistral, qwen2`},
		{"qwen3", strings.Replace(qwen2, `"qwen2"`, `"qwen3"`, 1), `model_type "qwen3"`},
		{"phi3", `{"model_type": "phi3"}`, `model_type "phi3"`},
		{"no model_type", `{"hidden_size": 64}`, "no model_type"},
		{"not json", `{"model_type": "llama",`, "unexpected end"},
		{"wrong type", `{"model_type": "llama", "hidden_size": "64"}`, "hidden_size"},
		{"missing hidden_size", without(minimal, `"hidden_size"`), "hidden_size is missing"},
		{"missing layers", without(minimal, `"num_hidden_layers"`), "num_hidden_layers is missing"},
		{"missing heads", without(minimal, `"num_attention_heads"`), "num_attention_heads is missing"},
		{"missing intermediate", without(minimal, `"intermediate_size"`), "intermediate_size is missing"},
		{"missing vocab", without(minimal, `"vocab_size"`), "vocab_size is missing"},
		{"zero layers", strings.Replace(minimal, `"num_hidden_layers": 2`, `"num_hidden_layers": 0`, 1), "must be positive"},
		{"heads not dividing", strings.Replace(minimal, `"num_attention_heads": 4`, `"num_attention_heads": 5`, 1), "not a multiple"},
		{"kv heads not dividing", with(minimal, `"num_key_value_heads": 3`), "KV heads"},
		{"odd head_dim", with(minimal, `"head_dim": 7`), "head_dim"},
		{"gelu", with(minimal, `"hidden_act": "gelu"`), `hidden_act "gelu"`},
		{"mlp bias", with(minimal, `"mlp_bias": true`), "mlp_bias"},
		{"llama attention bias", with(minimal, `"attention_bias": true`), "attention_bias"},
		{"yarn", with(minimal, `"rope_scaling": {"rope_type": "yarn", "factor": 4.0}`), `rope_type "yarn" is not supported`},
		{"dynamic", with(minimal, `"rope_parameters": {"rope_theta": 1e4, "rope_type": "dynamic", "factor": 2.0}`), `rope_parameters: rope_type "dynamic"`},
		{"llama3 incomplete", with(minimal, `"rope_scaling": {"rope_type": "llama3", "factor": 8.0}`), "low_freq_factor"},
		{"llama3 inverted", with(minimal, `"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4, "high_freq_factor": 1, "original_max_position_embeddings": 8192}`), "low_freq_factor"},
		{"no factor", with(minimal, `"rope_scaling": {"type": "linear"}`), "positive factor"},
		{"partial rotary", with(minimal, `"rope_parameters": {"rope_theta": 1e4, "partial_rotary_factor": 0.5}`), "partial_rotary_factor"},
		{"zero theta", with(minimal, `"rope_theta": 0`), "rope_theta"},
		{"zero eps", with(minimal, `"rms_norm_eps": 0`), "rms_norm_eps"},
		{"negative max pos", with(minimal, `"max_position_embeddings": -1`), "max_position_embeddings"},
		{"string bos", with(minimal, `"bos_token_id": "<s>"`), "bos_token_id"},
		{"negative eos", with(minimal, `"eos_token_id": -3`), "eos_token_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "hf config.json: ") {
				t.Errorf("err %q, want it to name the file and mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfigNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(`{"model_type": "gemma"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("err %v, want it to name %s", err, p)
	}
	missing := filepath.Join(t.TempDir(), "none.json")
	if _, err := LoadConfig(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("err %v, want it to name %s", err, missing)
	}
}

func TestLoadConfigPdtext(t *testing.T) {
	c, err := LoadConfig(testshared.Path(t, "models/pdtext-llama-28m/config.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := model.Config{Arch: "llama", Dim: 512, NLayers: 8, NHeads: 8, NKVHeads: 2, HeadDim: 64, FFNDim: 1536,
		VocabSize: 4096, MaxSeqLen: 1024, NormEps: 1e-5, RopeTheta: 10000, RopeStyle: model.RopeHalf, BOS: 0, EOS: 0}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}
}

func FuzzConfig(f *testing.F) {
	for _, s := range []string{llama2, llama32, mistral, qwen2, tf5, minimal, `{"model_type":"gemma"}`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("returned an invalid config: %v", err)
		}
		if c.MaxSeqLen <= 0 {
			t.Fatalf("MaxSeqLen %d", c.MaxSeqLen)
		}
	})
}
