package main

import (
	"flag"

	"github.com/terse-llm/terse/bundled"
	"github.com/terse-llm/terse/load"
)

// modelFlags are the flags every command that opens a model shares.
type modelFlags struct {
	path, tokenizer *string
}

func addModelFlags(fs *flag.FlagSet) *modelFlags {
	return &modelFlags{
		path:      fs.String("model", "", "Hugging Face folder, .gguf file or llama2.c .bin (default: the bundled stories260K)"),
		tokenizer: fs.String("tokenizer", "", "a tokenizer to use instead of the model's: tokenizer.json (or its folder), GGUF file or llama2.c tokenizer.bin, told apart by content"),
	}
}

// resolve fills in the bundled model when no --model was given.
func (f *modelFlags) resolve() (string, load.Options, error) {
	opt := load.Options{Tokenizer: *f.tokenizer}
	if *f.path != "" {
		return *f.path, opt, nil
	}
	m, tok, _, err := bundled.Extract()
	if err != nil {
		return "", opt, err
	}
	if opt.Tokenizer == "" {
		opt.Tokenizer = tok
	}
	return m, opt, nil
}

func (f *modelFlags) open() (*load.Checkpoint, error) {
	p, opt, err := f.resolve()
	if err != nil {
		return nil, err
	}
	return load.Open(p, opt)
}

func (f *modelFlags) openTokenizer() (*load.Checkpoint, error) {
	p, opt, err := f.resolve()
	if err != nil {
		return nil, err
	}
	opt.TokenizerOnly = true
	return load.Open(p, opt)
}
