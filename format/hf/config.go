// Package hf reads Hugging Face model folders: config.json into a
// model.Config for the architectures whose decoder block is the Llama block
// (llama, mistral, qwen2). See transformers' LlamaConfig, MistralConfig and
// Qwen2Config for the meaning and defaults of each field.
package hf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/terse-llm/terse/model"
)

// archDefaults are the transformers defaults that matter when a field is
// absent from config.json.
type archDefaults struct {
	maxPos   int
	attnBias bool // q, k and v always carry biases (qwen2)
}

// supported maps each supported model_type to its defaults.
var supported = map[string]archDefaults{
	"llama":   {maxPos: 2048},
	"mistral": {maxPos: 4096 * 32},
	"qwen2":   {maxPos: 32768, attnBias: true},
}

// SupportedModelTypes lists the model_type values LoadConfig accepts.
func SupportedModelTypes() []string { return []string{"llama", "mistral", "qwen2"} }

// ropeParams is rope_parameters (transformers 5) or rope_scaling (earlier).
type ropeParams struct {
	RopeTheta           *float64 `json:"rope_theta"`
	RopeType            string   `json:"rope_type"`
	Type                string   `json:"type"` // older spelling of rope_type
	Factor              *float64 `json:"factor"`
	LowFreqFactor       *float64 `json:"low_freq_factor"`
	HighFreqFactor      *float64 `json:"high_freq_factor"`
	OriginalMaxPos      *int     `json:"original_max_position_embeddings"`
	PartialRotaryFactor *float64 `json:"partial_rotary_factor"`
}

// rawConfig holds the config.json fields read; pointers tell absent from zero.
type rawConfig struct {
	ModelType         string          `json:"model_type"`
	HiddenSize        *int            `json:"hidden_size"`
	NumHiddenLayers   *int            `json:"num_hidden_layers"`
	NumAttentionHeads *int            `json:"num_attention_heads"`
	NumKeyValueHeads  *int            `json:"num_key_value_heads"`
	HeadDim           *int            `json:"head_dim"`
	IntermediateSize  *int            `json:"intermediate_size"`
	VocabSize         *int            `json:"vocab_size"`
	MaxPosEmbeddings  *int            `json:"max_position_embeddings"`
	RMSNormEps        *float64        `json:"rms_norm_eps"`
	RopeTheta         *float64        `json:"rope_theta"`
	RopeParameters    *ropeParams     `json:"rope_parameters"`
	RopeScaling       *ropeParams     `json:"rope_scaling"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	AttentionBias     *bool           `json:"attention_bias"`
	MLPBias           *bool           `json:"mlp_bias"`
	SlidingWindow     *int            `json:"sliding_window"`
	UseSlidingWindow  *bool           `json:"use_sliding_window"` // qwen2
	HiddenAct         *string         `json:"hidden_act"`
	BOSTokenID        json.RawMessage `json:"bos_token_id"`
	EOSTokenID        json.RawMessage `json:"eos_token_id"`
	// torch_dtype / dtype name the stored precision; the tensors say it too.
}

// LoadConfig reads a Hugging Face config.json and returns the model.Config
// it describes. Model types other than llama, mistral and qwen2, and
// features the Llama-block forward pass lacks (MLP biases, an attention
// output bias, activations other than SiLU, RoPE scaling other than linear
// and llama3), are errors.
func LoadConfig(path string) (*model.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hf %s: %w", path, err)
	}
	return parseConfig(path, b)
}

// ParseConfig is LoadConfig on config.json bytes already in memory.
func ParseConfig(data []byte) (*model.Config, error) { return parseConfig("config.json", data) }

func parseConfig(path string, data []byte) (*model.Config, error) {
	c, err := convert(data)
	if err != nil {
		return nil, fmt.Errorf("hf %s: %w", path, err)
	}
	return c, nil
}

func convert(data []byte) (*model.Config, error) {
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if r.ModelType == "" {
		return nil, errors.New("no model_type")
	}
	arch, ok := supported[r.ModelType]
	if !ok {
		return nil, fmt.Errorf("model_type %q is not supported; supported: %s", r.ModelType, strings.Join(SupportedModelTypes(), ", "))
	}
	c := &model.Config{Arch: r.ModelType, RopeStyle: model.RopeHalf, AttnBias: arch.attnBias}

	required := []struct {
		name string
		v    *int
		dst  *int
	}{
		{"hidden_size", r.HiddenSize, &c.Dim},
		{"num_hidden_layers", r.NumHiddenLayers, &c.NLayers},
		{"num_attention_heads", r.NumAttentionHeads, &c.NHeads},
		{"intermediate_size", r.IntermediateSize, &c.FFNDim},
		{"vocab_size", r.VocabSize, &c.VocabSize},
	}
	for _, f := range required {
		if f.v == nil {
			return nil, fmt.Errorf("%s is missing", f.name)
		}
		if *f.v <= 0 {
			return nil, fmt.Errorf("%s %d must be positive", f.name, *f.v)
		}
		*f.dst = *f.v
	}
	c.NKVHeads = c.NHeads
	if r.NumKeyValueHeads != nil {
		c.NKVHeads = *r.NumKeyValueHeads
	}
	if r.HeadDim != nil {
		c.HeadDim = *r.HeadDim
	} else {
		if c.Dim%c.NHeads != 0 {
			return nil, fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d and head_dim is not given", c.Dim, c.NHeads)
		}
		c.HeadDim = c.Dim / c.NHeads
	}
	c.MaxSeqLen = arch.maxPos
	if r.MaxPosEmbeddings != nil {
		c.MaxSeqLen = *r.MaxPosEmbeddings
	}
	if c.MaxSeqLen <= 0 {
		return nil, fmt.Errorf("max_position_embeddings %d must be positive", c.MaxSeqLen)
	}
	c.NormEps = 1e-6
	if r.RMSNormEps != nil {
		c.NormEps = *r.RMSNormEps
	}
	if r.TieWordEmbeddings != nil {
		c.TiedEmbeddings = *r.TieWordEmbeddings
	}

	if r.HiddenAct != nil && *r.HiddenAct != "silu" && *r.HiddenAct != "swish" {
		return nil, fmt.Errorf("hidden_act %q is not supported; only silu", *r.HiddenAct)
	}
	if r.MLPBias != nil && *r.MLPBias {
		return nil, errors.New("mlp_bias true is not supported")
	}
	if r.AttentionBias != nil && *r.AttentionBias && !arch.attnBias {
		// LlamaAttention gives o_proj a bias too, which model.Config
		// cannot express.
		return nil, fmt.Errorf("attention_bias true is not supported for %s (its output projection has a bias)", r.ModelType)
	}

	switch {
	case r.ModelType == "qwen2":
		if r.UseSlidingWindow != nil && *r.UseSlidingWindow && r.SlidingWindow != nil && *r.SlidingWindow > 0 {
			c.SlidingWindow = *r.SlidingWindow
		}
	case r.SlidingWindow != nil && *r.SlidingWindow > 0:
		c.SlidingWindow = *r.SlidingWindow
	}

	if err := rope(c, &r); err != nil {
		return nil, err
	}
	var err error
	if c.BOS, err = tokenID(r.BOSTokenID); err != nil {
		return nil, fmt.Errorf("bos_token_id: %w", err)
	}
	if c.EOS, err = tokenID(r.EOSTokenID); err != nil {
		return nil, fmt.Errorf("eos_token_id: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// rope sets RopeTheta and RopeScaling from rope_parameters (transformers 5),
// rope_theta and rope_scaling (earlier versions).
func rope(c *model.Config, r *rawConfig) error {
	c.RopeTheta = 10000
	switch {
	case r.RopeParameters != nil && r.RopeParameters.RopeTheta != nil:
		c.RopeTheta = *r.RopeParameters.RopeTheta
	case r.RopeTheta != nil:
		c.RopeTheta = *r.RopeTheta
	}
	if c.RopeTheta <= 0 {
		return fmt.Errorf("rope_theta %g must be positive", c.RopeTheta)
	}
	for _, p := range []struct {
		field string
		rp    *ropeParams
	}{{"rope_parameters", r.RopeParameters}, {"rope_scaling", r.RopeScaling}} {
		if p.rp == nil {
			continue
		}
		if f := p.rp.PartialRotaryFactor; f != nil && *f != 1 {
			return fmt.Errorf("%s: partial_rotary_factor %g is not supported", p.field, *f)
		}
		typ := p.rp.RopeType
		if typ == "" {
			typ = p.rp.Type
		}
		if typ == "" || typ == "default" {
			continue
		}
		s, err := scaling(typ, p.rp)
		if err != nil {
			return fmt.Errorf("%s: %w", p.field, err)
		}
		c.RopeScaling = s
		return nil // rope_parameters, when it scales, wins over rope_scaling
	}
	return nil
}

func scaling(typ string, p *ropeParams) (*model.RopeScaling, error) {
	if p.Factor == nil || *p.Factor <= 0 {
		return nil, fmt.Errorf("rope_type %q needs a positive factor", typ)
	}
	switch typ {
	case "linear":
		return &model.RopeScaling{Type: "linear", Factor: *p.Factor}, nil
	case "llama3":
		if p.LowFreqFactor == nil || p.HighFreqFactor == nil || p.OriginalMaxPos == nil {
			return nil, errors.New(`rope_type "llama3" needs low_freq_factor, high_freq_factor and original_max_position_embeddings`)
		}
		lo, hi, orig := *p.LowFreqFactor, *p.HighFreqFactor, *p.OriginalMaxPos
		if !(lo > 0 && hi > lo && orig > 0) {
			return nil, fmt.Errorf(`rope_type "llama3": need 0 < low_freq_factor (%g) < high_freq_factor (%g) and original_max_position_embeddings (%d) > 0`, lo, hi, orig)
		}
		return &model.RopeScaling{Type: "llama3", Factor: *p.Factor, LowFreqFactor: lo, HighFreqFactor: hi, OriginalMaxPos: orig}, nil
	}
	return nil, fmt.Errorf("rope_type %q is not supported; supported: default, linear, llama3", typ)
}

// tokenID reads a token id that may be absent, null, an integer or a list
// of integers (the first is used); absent, null or empty gives -1.
func tokenID(raw json.RawMessage) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return -1, nil
	}
	var id int
	if raw[0] == '[' {
		var ids []int
		if err := json.Unmarshal(raw, &ids); err != nil {
			return 0, fmt.Errorf("want an integer or a list of integers: %w", err)
		}
		if len(ids) == 0 {
			return -1, nil
		}
		id = ids[0]
	} else if err := json.Unmarshal(raw, &id); err != nil {
		return 0, fmt.Errorf("want an integer or a list of integers: %w", err)
	}
	if id < 0 {
		return 0, fmt.Errorf("negative id %d", id)
	}
	return id, nil
}
