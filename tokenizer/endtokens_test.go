package tokenizer

import (
	"reflect"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
)

func TestEndTokens(t *testing.T) {
	l2c, err := LoadLlama2c(testshared.Path(t, "models/stories260K/tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	// A GGUF vocabulary: </s> as control (type 3) ends generation; the same
	// text as a normal token (type 1) does not; eot_token_id adds its id.
	ggufMD := func(types []int32, extra map[string]any) map[string]any {
		md := map[string]any{
			"tokenizer.ggml.model":        "llama",
			"tokenizer.ggml.tokens":       []string{"<unk>", "<s>", "</s>", "a", "<|im_end|>", "b"},
			"tokenizer.ggml.scores":       []float32{0, 0, 0, -1, 0, -2},
			"tokenizer.ggml.token_type":   types,
			"tokenizer.ggml.bos_token_id": 1,
			"tokenizer.ggml.eos_token_id": 2,
		}
		for k, v := range extra {
			md[k] = v
		}
		return md
	}
	spm := func(types []int32, extra map[string]any) Tokenizer {
		tok, err := FromGGUF(ggufMD(types, extra))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name string
		tok  Tokenizer
		want []int
	}{
		{"llama2.c: EOS only", l2c, []int{2}},
		{"Llama-3 tokenizer.json: <|end_of_text|> is EOS, <|eot_id|> too", llama3Fixture(t, true, PatternLlama3), []int{301, 302}},
		{"GGUF: control <|im_end|>", spm([]int32{2, 3, 3, 1, 3, 1}, nil), []int{2, 4}},
		{"GGUF: a normal token named <|im_end|> does not end", spm([]int32{2, 3, 3, 1, 1, 1}, nil), []int{2}},
		{"GGUF: eot_token_id", spm([]int32{2, 3, 3, 1, 1, 1}, map[string]any{"tokenizer.ggml.eot_token_id": 5}), []int{2, 5}},
	}
	for _, tc := range tests {
		if got := EndTokens(tc.tok); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: EndTokens = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A NUL byte in text is one byte token, and the text after it is kept (the C
// code, reading a C string, stops there).
func TestLlama2cNUL(t *testing.T) {
	tok, err := LoadLlama2c(testshared.Path(t, "models/stories260K/tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
	}{
		{"Once upon a time\x00there was a cat."},
		{"\x00"},
		{"a\x00\x00b"},
		{"end\x00"},
	}
	for _, tc := range tests {
		ids := tok.Encode(tc.text, false)
		nuls := 0
		for _, id := range ids {
			if id == 3 { // <0x00>
				nuls++
			}
		}
		want := 0
		for i := 0; i < len(tc.text); i++ {
			if tc.text[i] == 0 {
				want++
			}
		}
		if nuls != want {
			t.Errorf("%q: %d NUL byte tokens in %v, want %d", tc.text, nuls, ids, want)
		}
		if got := tok.Decode(ids); got != tc.text {
			t.Errorf("%q: decodes to %q", tc.text, got)
		}
	}
}
