package load

import (
	"fmt"
	"path/filepath"

	"github.com/terse-llm/terse/format/llama2c"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
	"github.com/terse-llm/terse/tokenizer"
)

func openLlama2c(path string, opt Options) (*Checkpoint, error) {
	ck := &Checkpoint{}
	tp := opt.Tokenizer
	if tp == "" {
		// llama2.c keeps tokenizer.bin beside the checkpoint; stories260K uses tok512.bin.
		for _, name := range []string{"tokenizer.bin", "tok512.bin"} {
			p := filepath.Join(filepath.Dir(path), name)
			if fileSize(p) > 0 {
				tp = p
				break
			}
		}
		if tp == "" {
			return nil, fmt.Errorf("model %s: a llama2.c checkpoint needs its tokenizer: pass --tokenizer tokenizer.bin", path)
		}
	}
	var t tokenizer.Tokenizer
	var err error
	if opt.Tokenizer != "" {
		t, err = LoadTokenizer(tp)
	} else {
		t, err = tokenizer.LoadLlama2c(tp)
	}
	if err != nil {
		return nil, err
	}
	ck.Tokenizer = t
	if opt.TokenizerOnly {
		return ck, nil
	}
	c, err := llama2c.Load(path)
	if err != nil {
		return nil, err
	}
	ck.closers = append(ck.closers, c)
	ck.FileBytes = fileSize(path)
	ck.Tensors = c.Tensors()
	m, err := model.Load(c.Config, func(name string) (*tensor.Tensor, bool, error) {
		t, ok := c.Tensor(name)
		return t, ok, nil
	})
	if err != nil {
		return ck, fmt.Errorf("model %s: %w", path, err)
	}
	ck.Model = m
	return ck, nil
}
