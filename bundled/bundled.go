// Package bundled embeds the small default model and text that make
// `terse eval` work on a fresh machine with no downloads: Karpathy's
// stories260K llama2.c checkpoint with its 512-piece tokenizer, and a
// sample of the TinyStories validation split (see LICENSES.md).
package bundled

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/terse-llm/terse/internal/atomicfile"
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

// file is one embedded file.
type file struct {
	name string
	data []byte
}

func files() []file {
	return []file{{ModelName, model}, {TokenizerName, tok}, {TextName, text}}
}

// Extract writes the bundled files into a cache folder (once) and returns
// the paths of the model, its tokenizer and the text, so every loader reads
// them as it reads any file.
//
// The folder is named by the SHA-256 of the embedded bytes, under the
// user's cache folder (os.UserCacheDir), or under os.TempDir() when that is
// missing or not writable (no HOME, a read-only home). A file already there
// is used only when its SHA-256 matches the embedded bytes; otherwise it is
// rewritten, through a temporary renamed into place (internal/atomicfile),
// so a half-written or altered cache is repaired rather than loaded.
func Extract() (modelPath, tokPath, textPath string, err error) {
	fs := files()
	sums := make([][sha256.Size]byte, len(fs))
	all := sha256.New()
	for i, f := range fs {
		sums[i] = sha256.Sum256(f.data)
		all.Write(sums[i][:])
	}
	key := hex.EncodeToString(all.Sum(nil))[:16]
	var dirs []string
	if base, err := os.UserCacheDir(); err == nil && base != "" {
		dirs = append(dirs, filepath.Join(base, "terse", "bundled-"+key))
	}
	dirs = append(dirs, filepath.Join(os.TempDir(), "terse-bundled-"+key))
	var errs []error
	for _, dir := range dirs {
		if err := extractTo(dir, fs, sums); err != nil {
			errs = append(errs, err)
			continue
		}
		return filepath.Join(dir, ModelName), filepath.Join(dir, TokenizerName), filepath.Join(dir, TextName), nil
	}
	return "", "", "", fmt.Errorf("bundled: no folder to extract the default model into: %w", errors.Join(errs...))
}

// extractTo makes dir hold fs, whose SHA-256 sums are sums.
func extractTo(dir string, fs []file, sums [][sha256.Size]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, f := range fs {
		p := filepath.Join(dir, f.name)
		if sameHash(p, sums[i]) {
			continue
		}
		err := atomicfile.WriteFile(p, func(w *atomicfile.File) error {
			_, err := w.Write(f.data)
			return err
		})
		if err != nil {
			return err
		}
		if !sameHash(p, sums[i]) {
			return fmt.Errorf("%s: content differs from the embedded file after writing it", p)
		}
	}
	return nil
}

// sameHash reports whether the file at p has SHA-256 sum.
func sameHash(p string, sum [sha256.Size]byte) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return [sha256.Size]byte(h.Sum(nil)) == sum
}
