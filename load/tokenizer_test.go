package load

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
)

// The tokenizer's parser is chosen by the file, whatever the model's format.
func TestLoadTokenizerByContent(t *testing.T) {
	tok512 := testshared.Path(t, "models/stories260K/tok512.bin")
	storiesGGUF := testshared.Path(t, "models/stories260K-gguf/stories260K-f32.gguf")
	pdtext := testshared.Path(t, "models/pdtext-llama-28m")
	text := "Once upon a time, there was a little girl."
	want := []int{1, 403, 407, 261, 378, 432, 383, 286}
	tests := []struct {
		name, path string
		vocab      int
	}{
		{"llama2.c tokenizer.bin", tok512, 512},
		{"GGUF vocabulary", storiesGGUF, 512},
		{"tokenizer.json", filepath.Join(pdtext, "tokenizer.json"), 4096},
		{"folder with tokenizer.json", pdtext, 4096},
	}
	for _, tc := range tests {
		tok, err := LoadTokenizer(tc.path)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tok.VocabSize() != tc.vocab {
			t.Errorf("%s: vocabulary %d, want %d", tc.name, tok.VocabSize(), tc.vocab)
		}
		if tc.vocab == 512 {
			if got := tok.Encode(text, true); !reflect.DeepEqual(got[:len(want)], want) {
				t.Errorf("%s: ids %v, want %v…", tc.name, got, want)
			}
		}
	}
	// A GGUF model with a llama2.c tokenizer (the model's format no longer
	// decides the parser).
	ck, err := Open(storiesGGUF, Options{Tokenizer: tok512, TokenizerOnly: true})
	if err != nil {
		t.Fatalf("GGUF model with --tokenizer tok512.bin: %v", err)
	}
	ck.Close()
}

func TestLoadTokenizerErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path string
		msg        []string
	}{
		{"missing", filepath.Join(dir, "nope.json"), []string{"nope.json", "no such file"}},
		{"empty", write("empty.bin", nil), []string{"empty.bin", "empty"}},
		{"JSON that is no tokenizer", write("x.json", []byte(`{"a": 1}`)), []string{"x.json", "model"}},
		{"truncated GGUF", write("t.gguf", []byte("GGUF\x03\x00")), []string{"t.gguf"}},
		{"garbage", write("g.bin", []byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5}), []string{"g.bin", "llama2.c"}},
		{"folder without tokenizer.json", dir, []string{dir, "tokenizer.json"}},
	}
	for _, tc := range tests {
		_, err := LoadTokenizer(tc.path)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, m := range tc.msg {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, m)
			}
		}
	}
}
