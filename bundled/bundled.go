// Package bundled embeds the small default model and text that make
// `terse eval` work on a fresh machine with no downloads: Karpathy's
// stories260K llama2.c checkpoint with its 512-piece tokenizer, and a
// sample of the TinyStories validation split (see LICENSES.md).
package bundled

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

//go:embed stories260K.bin
var model []byte

//go:embed tok512.bin
var tok []byte

//go:embed tinystories-valid-sample.txt
var text []byte

// Names of the bundled files.
const (
	ModelName     = "stories260K.bin"
	TokenizerName = "tok512.bin"
	TextName      = "tinystories-valid-sample.txt"
)

// Text returns the bundled evaluation text.
func Text() []byte { return text }

// Extract writes the bundled files into a cache folder (once) and returns
// the paths of the model, its tokenizer and the text, so every loader reads
// them as it reads any file.
func Extract() (modelPath, tokPath, textPath string, err error) {
	base, err := os.UserCacheDir()
	if err != nil || base == "" {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "terse", "bundled")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", "", fmt.Errorf("bundled: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{{ModelName, model}, {TokenizerName, tok}, {TextName, text}}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if st, err := os.Stat(p); err == nil && st.Size() == int64(len(f.data)) {
			continue
		}
		tmp, err := os.CreateTemp(dir, f.name+".*")
		if err != nil {
			return "", "", "", fmt.Errorf("bundled: %w", err)
		}
		_, werr := tmp.Write(f.data)
		cerr := tmp.Close()
		if werr != nil || cerr != nil {
			os.Remove(tmp.Name())
			return "", "", "", fmt.Errorf("bundled: writing %s: %v %v", p, werr, cerr)
		}
		if err := os.Rename(tmp.Name(), p); err != nil {
			return "", "", "", fmt.Errorf("bundled: %w", err)
		}
	}
	return filepath.Join(dir, ModelName), filepath.Join(dir, TokenizerName), filepath.Join(dir, TextName), nil
}
