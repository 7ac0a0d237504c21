// Package load opens a checkpoint in any supported format — a Hugging Face
// folder (config.json, safetensors, tokenizer.json), a GGUF file, or a
// llama2.c .bin with its tokenizer.bin — and returns a runnable model with
// its tokenizer. It is the one place that knows how each format's names and
// settings map onto model.Config and the canonical weight names.
package load

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/terse-llm/terse/format/native"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
	"github.com/terse-llm/terse/tokenizer"
)

// Format names a checkpoint format.
type Format string

// Formats Open understands.
const (
	HF      Format = "hf"
	GGUF    Format = "gguf"
	Llama2c Format = "llama2c"
)

// Options adjust Open.
type Options struct {
	// Tokenizer is a tokenizer to use instead of the model's own: a
	// tokenizer.json, a llama2.c tokenizer.bin or a GGUF file, told apart by
	// their contents (see LoadTokenizer). A llama2.c checkpoint needs one
	// unless tokenizer.bin or tok512.bin lies beside it.
	Tokenizer string
	// TokenizerOnly skips the weights (for tokenize).
	TokenizerOnly bool
}

// Checkpoint is an opened model. Its tensors may alias memory-mapped files,
// so Close it only when done with the model.
type Checkpoint struct {
	Path      string
	Format    Format
	Model     *model.Model // nil with Options.TokenizerOnly
	Tokenizer tokenizer.Tokenizer
	FileBytes int64 // bytes of the weight files on disk
	// Tensors lists every tensor in the files, in file order, as stored
	// (for inspect); the model's matrices are among them.
	Tensors []*tensor.Tensor
	closers []io.Closer
}

// Close releases the files.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, cl := range c.closers {
		errs = append(errs, cl.Close())
	}
	c.closers = nil
	return errors.Join(errs...)
}

// DetectFormat says which format path holds.
func DetectFormat(path string) (Format, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", path, pathErr(err))
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "config.json")); err != nil {
			return "", fmt.Errorf("model %s: a folder must hold a Hugging Face config.json", path)
		}
		return HF, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", path, pathErr(err))
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return "", fmt.Errorf("model %s: too short to be a checkpoint", path)
	}
	switch {
	case strings.HasSuffix(path, native.Ext) || native.Sniff(path):
		return Native, nil
	case string(magic[:]) == "GGUF":
		return GGUF, nil
	case strings.HasSuffix(path, ".bin"):
		return Llama2c, nil
	}
	return "", fmt.Errorf("model %s: not a GGUF file, a terse native file, a llama2.c .bin or a Hugging Face folder", path)
}

// Open loads the checkpoint at path.
func Open(path string, opt Options) (*Checkpoint, error) {
	f, err := DetectFormat(path)
	if err != nil {
		return nil, err
	}
	var ck *Checkpoint
	switch f {
	case HF:
		ck, err = openHF(path, opt)
	case GGUF:
		ck, err = openGGUF(path, opt)
	case Llama2c:
		ck, err = openLlama2c(path, opt)
	case Native:
		ck, err = openNative(path, opt)
	}
	if err != nil {
		if ck != nil {
			ck.Close()
		}
		return nil, err
	}
	ck.Path, ck.Format = path, f
	if opt.Tokenizer != "" && f != Llama2c {
		t, err := LoadTokenizer(opt.Tokenizer)
		if err != nil {
			ck.Close()
			return nil, err
		}
		ck.Tokenizer = t
	}
	if ck.Model != nil && ck.Tokenizer != nil && ck.Tokenizer.VocabSize() > ck.Model.Config.VocabSize {
		ck.Close()
		return nil, fmt.Errorf("model %s: tokenizer has %d tokens but the model only %d", path, ck.Tokenizer.VocabSize(), ck.Model.Config.VocabSize)
	}
	return ck, nil
}

func fileSize(paths ...string) int64 {
	var n int64
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			n += st.Size()
		}
	}
	return n
}

// pathErr drops the operation and path from an *fs.PathError, whose path
// the caller's message already names ("model x: no such file or directory",
// not "model x: stat x: no such file or directory").
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
