package tokenizer

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// spmFixture builds a tiny SentencePiece-style BPE tokenizer.json:
// <unk> <s> </s>, 256 byte tokens, then characters and merges spelling
// "▁hello" and "▁world". style selects the Llama-2 legacy normalizer
// layout or the newer Metaspace pre-tokenizer.
func spmFixture(t testing.TB, style string, byteFallback, fuseUnk bool) *BPE {
	t.Helper()
	vocab := map[string]int{"<unk>": 0, "<s>": 1, "</s>": 2}
	for b := 0; b < 256; b++ {
		vocab[byteTokenName(b)] = 3 + b
	}
	next := 259
	for _, p := range []string{"▁", "h", "e", "l", "o", "w", "r", "d"} {
		vocab[p] = next
		next++
	}
	merges := [][2]string{{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"▁", "hello"},
		{"o", "r"}, {"w", "or"}, {"wor", "l"}, {"worl", "d"}, {"▁", "world"}}
	var mergeStrs []string
	for _, m := range merges {
		vocab[m[0]+m[1]] = next
		next++
		mergeStrs = append(mergeStrs, m[0]+" "+m[1])
	}
	doc := map[string]any{
		"version": "1.0",
		"added_tokens": []map[string]any{
			{"id": 0, "content": "<unk>", "special": true, "normalized": false},
			{"id": 1, "content": "<s>", "special": true, "normalized": false},
			{"id": 2, "content": "</s>", "special": true, "normalized": false},
		},
		"post_processor": map[string]any{
			"type":   "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair":   []any{},
			"special_tokens": map[string]any{
				"<s>": map[string]any{"id": "<s>", "ids": []int{1}, "tokens": []string{"<s>"}},
			},
		},
		"model": map[string]any{
			"type": "BPE", "vocab": vocab, "merges": mergeStrs, "unk_token": "<unk>",
			"byte_fallback": byteFallback, "fuse_unk": fuseUnk, "ignore_merges": false,
		},
	}
	switch style {
	case "legacy":
		doc["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}}
		doc["pre_tokenizer"] = nil
		doc["decoder"] = map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"},
			map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}}
	case "metaspace":
		doc["normalizer"] = nil
		doc["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
		doc["decoder"] = map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "ByteFallback"},
			map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},
		}}
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseHF("spm-fixture.json", data)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func byteTokenName(b int) string {
	const hex = "0123456789ABCDEF"
	return "<0x" + string(hex[b>>4]) + string(hex[b&15]) + ">"
}

func TestSPMFixtures(t *testing.T) {
	for _, style := range []string{"legacy", "metaspace"} {
		tok := spmFixture(t, style, true, true)
		id := func(p string) int {
			i, ok := tok.TokenID(p)
			if !ok {
				t.Fatalf("no token %q", p)
			}
			return i
		}
		hello, world, sp := id("▁hello"), id("▁world"), id("▁")
		if tok.BOS() != 1 || tok.EOS() != 2 {
			t.Errorf("%s: BOS %d EOS %d", style, tok.BOS(), tok.EOS())
		}
		cases := []struct {
			text    string
			special bool
			want    []int
		}{
			{"hello world", false, []int{hello, world}},
			{"hello world", true, []int{1, hello, world}},
			{"", true, []int{1}},
			{"", false, nil},
			{"hello  world", false, []int{hello, sp, world}},
			{"hello😀", false, []int{hello, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80}},
			{"hello\n", false, []int{hello, 3 + '\n'}},
		}
		// After a special token the legacy normalizer prepends ▁ again
		// (it runs per piece); Metaspace "first" does not.
		if style == "legacy" {
			cases = append(cases, struct {
				text    string
				special bool
				want    []int
			}{"hello<s>world", false, []int{hello, 1, world}})
		} else {
			cases = append(cases, struct {
				text    string
				special bool
				want    []int
			}{"hello<s>world", false, []int{hello, 1, id("world")}})
		}
		for _, c := range cases {
			if got := tok.Encode(c.text, c.special); !sameIDs(got, c.want) {
				t.Errorf("%s: Encode(%q, %v) = %v, want %v", style, c.text, c.special, got, c.want)
			}
		}
		for _, s := range []string{"hello world", "hello  world", "hello😀 world\n", "日本"} {
			if got := tok.Decode(tok.Encode(s, false)); got != s {
				t.Errorf("%s: round trip %q → %q", style, s, got)
			}
		}
		// A lone invalid byte decodes to U+FFFD per byte.
		if got := tok.Decode([]int{hello, 3 + 0xF0, 3 + 0x9F}); got != "hello\uFFFD\uFFFD" {
			t.Errorf("%s: Decode of partial bytes = %q", style, got)
		}
	}
	// Legacy decoder keeps "<s>" and strips only a leading space.
	tok := spmFixture(t, "legacy", true, true)
	if got := tok.Decode(tok.Encode("hello world", true)); got != "<s> hello world" {
		t.Errorf("legacy Decode with BOS = %q", got)
	}
	// Without byte fallback unknown characters become <unk>, fused.
	tok = spmFixture(t, "legacy", false, true)
	hello, _ := tok.TokenID("▁hello")
	if got := tok.Encode("hello😀😀", false); !reflect.DeepEqual(got, []int{hello, 0}) {
		t.Errorf("fuse_unk: %v", got)
	}
	tok = spmFixture(t, "legacy", false, false)
	if got := tok.Encode("hello😀😀", false); !reflect.DeepEqual(got, []int{hello, 0, 0}) {
		t.Errorf("no fuse_unk: %v", got)
	}
}

// llama3Fixture builds a tiny Llama-3-style byte-level tokenizer.json: the
// 256 byte runes as ids 0..255, a few merges given as pairs, "Ġworld" as a
// whole word with no merge path, and the Llama-3 special tokens.
func llama3Fixture(t testing.TB, ignoreMerges bool, pattern string) *BPE {
	t.Helper()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[byteToStr[b]] = b
	}
	merges := [][2]string{{"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"h", "e"}, {"l", "l"}}
	next := 256
	for _, m := range merges {
		vocab[m[0]+m[1]] = next
		next++
	}
	vocab["Ġworld"] = next
	doc := map[string]any{
		"added_tokens": []map[string]any{
			{"id": 300, "content": "<|begin_of_text|>", "special": true},
			{"id": 301, "content": "<|end_of_text|>", "special": true},
			{"id": 302, "content": "<|eot_id|>", "special": true},
		},
		"normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": pattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
		}},
		"post_processor": map[string]any{"type": "Sequence", "processors": []any{
			map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
			map[string]any{"type": "TemplateProcessing",
				"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<|begin_of_text|>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
				"special_tokens": map[string]any{"<|begin_of_text|>": map[string]any{"id": "<|begin_of_text|>", "ids": []int{300}, "tokens": []string{"<|begin_of_text|>"}}}},
		}},
		"decoder": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": ignoreMerges,
			"byte_fallback": false, "fuse_unk": false, "unk_token": nil},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseHF("llama3-fixture.json", data)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestLlama3Fixture(t *testing.T) {
	b := func(s string) []int {
		var out []int
		for i := 0; i < len(s); i++ {
			out = append(out, int(s[i]))
		}
		return out
	}
	cat := func(parts ...[]int) []int {
		var out []int
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	he, ll, gwor, gworld := 259, 260, 258, 261
	for _, pat := range []string{PatternLlama3, PatternQwen2} {
		tok := llama3Fixture(t, true, pat)
		if tok.BOS() != 300 || tok.EOS() != 301 {
			t.Errorf("BOS %d EOS %d", tok.BOS(), tok.EOS())
		}
		digits := cat(b("123"), b("45")) // ids are the same however digits are grouped
		cases := []struct {
			text    string
			special bool
			want    []int
		}{
			{"hello world 12345", false, cat([]int{he, ll}, b("o"), []int{gworld}, b(" "), digits)},
			{"hello world", true, cat([]int{300, he, ll}, b("o"), []int{gworld})},
			{"<|begin_of_text|>hello<|eot_id|>", false, cat([]int{300, he, ll}, b("o"), []int{302})},
			{"HE'S", false, b("HE'S")},
		}
		for _, c := range cases {
			if got := tok.Encode(c.text, c.special); !sameIDs(got, c.want) {
				t.Errorf("Encode(%q, %v) = %v, want %v", c.text, c.special, got, c.want)
			}
		}
		for _, s := range roundTripStrings {
			if got := tok.Decode(tok.Encode(s, false)); got != s {
				t.Errorf("round trip %q → %q", s, got)
			}
		}
	}
	// Without ignore_merges the whole-word entry is not reachable.
	tok := llama3Fixture(t, false, PatternLlama3)
	if got, want := tok.Encode(" world", false), cat([]int{gwor}, b("ld")); !reflect.DeepEqual(got, want) {
		t.Errorf("no ignore_merges: %v, want %v", got, want)
	}
	// A pattern without lookahead falls back to Go's regexp.
	tok = llama3Fixture(t, true, `\p{L}+|\p{N}|\s+|[^\s\p{L}\p{N}]+`)
	if got, want := tok.Encode("ab 12", false), cat(b("ab"), b(" "), b("1"), b("2")); !reflect.DeepEqual(got, want) {
		t.Errorf("regexp fallback: %v, want %v", got, want)
	}
}

func TestLoadHFErrors(t *testing.T) {
	cases := map[string]string{
		"not json":  `{`,
		"unigram":   `{"model":{"type":"Unigram","vocab":[["a",0]]}}`,
		"wordpiece": `{"model":{"type":"WordPiece","vocab":{"a":0}}}`,
		"bad merge": `{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}}`,
		"lookahead": `{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Split","pattern":{"Regex":"a(?=b)"},"behavior":"Isolated"}}`,
		"bad pre":   `{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"BertPreTokenizer"}}`,
		"sparse":    `{"model":{"type":"BPE","vocab":{"a":100000000},"merges":[]}}`,
		"bad unk":   `{"model":{"type":"BPE","vocab":{"a":0},"merges":[],"unk_token":"<unk>"}}`,
	}
	for name, js := range cases {
		_, err := ParseHF("x/tokenizer.json", []byte(js))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(err.Error(), "x/tokenizer.json") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	if _, err := LoadHF("/nonexistent/tokenizer.json"); err == nil {
		t.Error("missing file: no error")
	}
}

func TestLlama2cErrors(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":     {},
		"no tokens": {7, 0, 0, 0},
		"truncated": {7, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 'a'},
		"negative":  {7, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := ParseLlama2c("tok.bin", data); err == nil || !strings.Contains(err.Error(), "tok.bin") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestFromGGUFErrors(t *testing.T) {
	for name, md := range map[string]map[string]any{
		"no model":   {"tokenizer.ggml.tokens": []string{"a"}},
		"bad model":  {"tokenizer.ggml.model": "bert", "tokenizer.ggml.tokens": []string{"a"}},
		"no tokens":  {"tokenizer.ggml.model": "llama"},
		"bad scores": {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": []string{"a"}, "tokenizer.ggml.scores": []float32{1, 2}},
		"bad pre":    {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": []string{"a"}, "tokenizer.ggml.pre": "mystery"},
	} {
		if _, err := FromGGUF(md); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Integer ids of any type and []any arrays are accepted.
	tok, err := FromGGUF(map[string]any{
		"tokenizer.ggml.model":        "llama",
		"tokenizer.ggml.tokens":       []any{"<unk>", "<s>", "</s>", "▁", "a", "▁a"},
		"tokenizer.ggml.scores":       []any{0.0, 0.0, 0.0, -1.0, -2.0, -0.5},
		"tokenizer.ggml.token_type":   []any{2, 3, 3, 1, 1, 1},
		"tokenizer.ggml.bos_token_id": int64(1),
		"tokenizer.ggml.eos_token_id": uint8(2),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("a a", true); !reflect.DeepEqual(got, []int{1, 5, 5}) {
		t.Errorf("Encode = %v", got)
	}
	if got := tok.Decode([]int{5, 5}); got != "a a" {
		t.Errorf("Decode = %q", got)
	}
}

// sameIDs compares id lists, treating nil and empty as equal.
func sameIDs(a, b []int) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}
