package load

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/terse-llm/terse/format/hf"
	"github.com/terse-llm/terse/format/safetensors"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
	"github.com/terse-llm/terse/tokenizer"
)

// hfNames maps the canonical names of one block to Hugging Face's.
var hfNames = map[string]string{
	"attn_norm.weight":   "input_layernorm.weight",
	"attn_q.weight":      "self_attn.q_proj.weight",
	"attn_k.weight":      "self_attn.k_proj.weight",
	"attn_v.weight":      "self_attn.v_proj.weight",
	"attn_q.bias":        "self_attn.q_proj.bias",
	"attn_k.bias":        "self_attn.k_proj.bias",
	"attn_v.bias":        "self_attn.v_proj.bias",
	"attn_output.weight": "self_attn.o_proj.weight",
	"ffn_norm.weight":    "post_attention_layernorm.weight",
	"ffn_gate.weight":    "mlp.gate_proj.weight",
	"ffn_up.weight":      "mlp.up_proj.weight",
	"ffn_down.weight":    "mlp.down_proj.weight",
}

// HFName is the Hugging Face name of a canonical tensor name.
func HFName(canonical string) string {
	switch canonical {
	case "token_embd.weight":
		return "model.embed_tokens.weight"
	case "output_norm.weight":
		return "model.norm.weight"
	case "output.weight":
		return "lm_head.weight"
	}
	var layer int
	var rest string
	if n, _ := fmt.Sscanf(canonical, "blk.%d.", &layer); n == 1 {
		rest = canonical[strings.Index(canonical[4:], ".")+5:]
		if h, ok := hfNames[rest]; ok {
			return fmt.Sprintf("model.layers.%d.%s", layer, h)
		}
	}
	return canonical
}

func openHF(dir string, opt Options) (*Checkpoint, error) {
	ck := &Checkpoint{}
	if opt.Tokenizer == "" {
		tp := filepath.Join(dir, "tokenizer.json")
		t, err := tokenizer.LoadHF(tp)
		if err != nil {
			return nil, err
		}
		ck.Tokenizer = t
	}
	cfg, err := hf.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	if t, ok := ck.Tokenizer.(interface{ SetSpecial(bos, eos int) }); ok && (cfg.BOS >= 0 || cfg.EOS >= 0) {
		bos, eos := cfg.BOS, cfg.EOS
		if bos < 0 {
			bos = ck.Tokenizer.BOS()
		}
		if eos < 0 {
			eos = ck.Tokenizer.EOS()
		}
		t.SetSpecial(bos, eos)
	}
	if opt.TokenizerOnly {
		return ck, nil
	}
	st, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	ck.closers = append(ck.closers, st)
	ck.FileBytes = st.Bytes()
	for _, name := range st.Names() {
		t, err := st.Tensor(name)
		if err != nil {
			return ck, err
		}
		ck.Tensors = append(ck.Tensors, t)
	}
	if !cfg.TiedEmbeddings {
		if _, err := st.Info("lm_head.weight"); err != nil {
			cfg.TiedEmbeddings = true // checkpoints that tie often omit lm_head
		}
	}
	m, err := model.Load(*cfg, func(name string) (*tensor.Tensor, bool, error) {
		hn := HFName(name)
		if _, err := st.Info(hn); err != nil {
			return nil, false, nil
		}
		t, err := st.Tensor(hn)
		if err != nil {
			return nil, false, err
		}
		// The model, and everything downstream of it (calibration,
		// compression, GGUF output), sees canonical names.
		c := *t
		c.Name = name
		return &c, true, nil
	})
	if err != nil {
		return ck, fmt.Errorf("model %s: %w", dir, err)
	}
	ck.Model = m
	return ck, nil
}
