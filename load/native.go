package load

import (
	"fmt"
	"io"

	"github.com/terse-llm/terse/format/native"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
	"github.com/terse-llm/terse/tokenizer"
)

// Native is terse's own file (format/native): codebook- and
// vector-quantized matrices, run without decoding them up front.
const Native Format = "native"

func openNative(path string, opt Options) (*Checkpoint, error) {
	f, err := native.Open(path)
	if err != nil {
		return nil, err
	}
	ck := &Checkpoint{closers: []io.Closer{f}, FileBytes: f.Bytes(), Tensors: f.Tensors}
	cfg := f.Meta.Config
	if opt.Tokenizer == "" {
		var t interface {
			tokenizer.Tokenizer
			SetSpecial(bos, eos int)
		}
		switch f.Meta.Tokenizer.Kind {
		case native.TokenizerLlama2c:
			l, err := tokenizer.ParseLlama2c(path+" (embedded tokenizer.bin)", f.TokenizerData)
			if err != nil {
				return ck, err
			}
			t = l
		default:
			b, err := tokenizer.ParseHF(path+" (embedded tokenizer.json)", f.TokenizerData)
			if err != nil {
				return ck, err
			}
			t = b
		}
		if cfg.BOS >= 0 || cfg.EOS >= 0 {
			bos, eos := cfg.BOS, cfg.EOS
			if bos < 0 {
				bos = t.BOS()
			}
			if eos < 0 {
				eos = t.EOS()
			}
			t.SetSpecial(bos, eos)
		}
		ck.Tokenizer = t
	}
	if opt.TokenizerOnly {
		return ck, nil
	}
	m, err := model.Load(cfg, func(name string) (*tensor.Tensor, bool, error) {
		t, ok := f.Tensor(name)
		return t, ok, nil
	})
	if err != nil {
		return ck, fmt.Errorf("model %s: %w", path, err)
	}
	ck.Model = m
	return ck, nil
}
