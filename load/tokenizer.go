package load

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/tokenizer"
)

// LoadTokenizer reads the tokenizer at path, choosing its parser by the
// file itself rather than by the model it goes with: a GGUF file (by its
// magic) gives its embedded vocabulary, a JSON object a Hugging Face
// tokenizer.json, a folder its tokenizer.json, and anything else is read as
// a llama2.c tokenizer.bin. Errors name path and the kind it was taken for.
func LoadTokenizer(path string) (tokenizer.Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	if st.IsDir() {
		p := filepath.Join(path, "tokenizer.json")
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("tokenizer %s: a folder must hold a tokenizer.json", path)
		}
		return tokenizer.LoadHF(p)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	head := make([]byte, 64)
	n, err := io.ReadFull(f, head)
	f.Close()
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	head = head[:n]
	switch {
	case n == 0:
		return nil, fmt.Errorf("tokenizer %s: the file is empty", path)
	case bytes.HasPrefix(head, []byte("GGUF")):
		g, err := gguf.Open(path)
		if err != nil {
			return nil, fmt.Errorf("tokenizer %s: %w", path, err)
		}
		defer g.Close()
		t, err := tokenizer.FromGGUF(g.Metadata)
		if err != nil {
			return nil, fmt.Errorf("tokenizer %s (GGUF): %w", path, err)
		}
		return t, nil
	case len(bytes.TrimLeft(head, " \t\r\n")) > 0 && bytes.TrimLeft(head, " \t\r\n")[0] == '{':
		return tokenizer.LoadHF(path)
	}
	t, err := tokenizer.LoadLlama2c(path)
	if err != nil {
		return nil, fmt.Errorf("%w (not a GGUF file or a tokenizer.json, so it was read as a llama2.c tokenizer.bin)", err)
	}
	return t, nil
}
