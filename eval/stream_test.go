package eval

import (
	"slices"
	"strings"
	"testing"
)

// wordTok is a fake tokenizer: one id per space-separated word, its length
// plus 10; BOS is 1 (or absent).
type wordTok struct{ bos int }

func (w wordTok) Encode(text string, addSpecial bool) []int {
	var ids []int
	if addSpecial && w.bos >= 0 {
		ids = append(ids, w.bos)
	}
	for _, f := range strings.Fields(text) {
		ids = append(ids, len(f)+10)
	}
	return ids
}
func (wordTok) Decode(ids []int) string { return "" }
func (wordTok) Piece(id int) string     { return "" }
func (wordTok) VocabSize() int          { return 100 }
func (w wordTok) BOS() int              { return w.bos }
func (wordTok) EOS() int                { return 2 }

func TestStream(t *testing.T) {
	text := "a bb\nccc\n<|doc|>\n  \n<|doc|>\n\tdddd e \n<|doc|>\n\x1f\n<|doc|>\nff"
	for _, tc := range []struct {
		name string
		bos  int
		sep  string
		want []int
	}{
		{"documents", 1, DocSeparator, []int{1, 11, 12, 13, 1, 14, 11, 1, 12}},
		{"documents without BOS", -1, DocSeparator, []int{11, 12, 13, 14, 11, 12}},
		// "<|doc|>" is a word of 7 letters to this tokenizer.
		{"whole text", 1, "", []int{1, 11, 12, 13, 17, 17, 14, 11, 17, 11, 17, 12}},
		{"whole text without BOS", -1, "", []int{11, 12, 13, 17, 17, 14, 11, 17, 11, 17, 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// "\x1f" is a word to strings.Fields (id 11) in the whole
			// text, but as a document it strips to nothing, as in Python.
			if got := Stream(wordTok{tc.bos}, text, tc.sep); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name     string
		bos, eos int
		sep      string
		want     []int
	}{
		{"documents with EOS", 1, 2, DocSeparator, []int{1, 11, 12, 13, 2, 1, 14, 11, 2, 1, 12, 2}},
		{"EOS without BOS", -1, 2, DocSeparator, []int{11, 12, 13, 2, 14, 11, 2, 12, 2}},
		{"EOS equal to BOS is not appended", 1, 1, DocSeparator, []int{1, 11, 12, 13, 1, 14, 11, 1, 12}},
		{"no EOS in the vocabulary", 1, -1, DocSeparator, []int{1, 11, 12, 13, 1, 14, 11, 1, 12}},
		{"whole text ignores EOS", 1, 2, "", []int{1, 11, 12, 13, 17, 17, 14, 11, 17, 11, 17, 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := StreamEOS(wordTok{tc.bos}, text, tc.sep, tc.eos); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got := Stream(wordTok{1}, "", DocSeparator); len(got) != 0 {
		t.Errorf("empty text gives %v", got)
	}
}
