package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/terse-llm/terse/internal/testshared"
)

type pdtextRef struct {
	First64        []int  `json:"first64_ids"`
	GreedyPrompt   string `json:"greedy_prompt"`
	GreedyPromptID []int  `json:"greedy_prompt_ids"`
	GreedyIDs      []int  `json:"greedy_ids"`
	GreedyText     string `json:"greedy_text"`
	ExampleText    string `json:"encode_example_text"`
	ExampleIDs     []int  `json:"encode_example_ids"`
	ExampleSpecial []int  `json:"encode_example_ids_with_specials"`
}

func loadPdtext(t *testing.T) (*BPE, pdtextRef) {
	t.Helper()
	tok, err := LoadHF(testshared.Path(t, "models/pdtext-llama-28m/tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(testshared.Path(t, "models/pdtext-llama-28m/reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref pdtextRef
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	return tok, ref
}

// pyStrip is Python's str.strip().
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
	})
}

// referenceStream builds the reference.json token stream: documents split
// on <|doc|>, stripped, empties dropped, each encoded without specials and
// prefixed with BOS.
func referenceStream(t *testing.T, tok Tokenizer, bos int) []int {
	data, err := os.ReadFile(testshared.Path(t, "data/pdtext-val.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var stream []int
	for _, doc := range strings.Split(string(data), "<|doc|>") {
		doc = pyStrip(doc)
		if doc == "" {
			continue
		}
		stream = append(stream, bos)
		stream = append(stream, tok.Encode(doc, false)...)
	}
	return stream
}

func TestPdtextReference(t *testing.T) {
	tok, ref := loadPdtext(t)
	if tok.BOS() != 0 || tok.EOS() != 0 || tok.VocabSize() != 4096 {
		t.Fatalf("BOS %d EOS %d vocab %d, want 0 0 4096", tok.BOS(), tok.EOS(), tok.VocabSize())
	}
	cases := []struct {
		name    string
		text    string
		special bool
		want    []int
	}{
		{"example", ref.ExampleText, false, ref.ExampleIDs},
		{"example with specials", ref.ExampleText, true, ref.ExampleSpecial},
		{"greedy prompt", ref.GreedyPrompt, true, ref.GreedyPromptID},
	}
	for _, c := range cases {
		if got := tok.Encode(c.text, c.special); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Encode = %v, want %v", c.name, got, c.want)
		}
	}
	if got := tok.Decode(ref.GreedyIDs); !strings.HasPrefix(got, ref.GreedyText) {
		t.Errorf("Decode(greedy_ids) = %q, want %q", got, ref.GreedyText)
	}
	stream := referenceStream(t, tok, tok.BOS())
	if len(stream) < 64 || !reflect.DeepEqual(stream[:64], ref.First64) {
		t.Errorf("first 64 ids of stream:\n got %v\nwant %v", stream[:min(64, len(stream))], ref.First64)
	}
	if n := len(stream); n < 200*512 {
		t.Errorf("stream has %d tokens, want at least %d for 200 windows", n, 200*512)
	}
	// Literal special token in text is matched.
	if got := tok.Encode("a<|endoftext|>b", false); len(got) != 3 || got[1] != 0 {
		t.Errorf("Encode with literal <|endoftext|> = %v", got)
	}
}

func TestPdtextRoundTrip(t *testing.T) {
	tok, _ := loadPdtext(t)
	for _, s := range roundTripStrings {
		if got := tok.Decode(tok.Encode(s, false)); got != s {
			t.Errorf("round trip %q → %v → %q", s, tok.Encode(s, false), got)
		}
	}
}

var roundTripStrings = []string{
	"", " ", "  ", "\n", "\n\n\t ", "Hello, world!", "  leading and trailing  ",
	"It's, isn't; we'll, they're, I've, I'd, I'M, YOU'LL", "1234567 89 3.14159 ١٢٣",
	"naïve café — “quotes” ‘single’ …", "日本語のテキスト、中文文本。", "emoji 😀👍🏽 flags 🇫🇷",
	"tabs\tand\r\nwindows\r\nlines", "a   b", "x\u00a0y\u2003z", "ÅÅ e\u0301", "<|endoftext|> middle <|endoftext|>",
	"$100,000.00 (approx.) [sic] {braces} <angle> #hash @at ~tilde `tick`",
}

func TestPdtextEncodeSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	tok, _ := loadPdtext(t)
	data, err := os.ReadFile(testshared.Path(t, "data/pdtext-calib.txt"))
	if err != nil {
		t.Fatal(err)
	}
	res := testing.Benchmark(func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			tok.cache = nil // measure uncached
			tok.Encode(string(data), false)
		}
	})
	mbps := float64(len(data)) * float64(res.N) / res.T.Seconds() / 1e6
	t.Logf("encode %.1f MB/s uncached (%d bytes, %v/op)", mbps, len(data), res.NsPerOp())
	if mbps < 1 {
		t.Errorf("encode is %.2f MB/s, want > 1", mbps)
	}
}

func BenchmarkPdtextEncode(b *testing.B) {
	tok, err := LoadHF(testshared.Path(b, "models/pdtext-llama-28m/tokenizer.json"))
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(testshared.Path(b, "data/pdtext-calib.txt"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		tok.Encode(string(data), false)
	}
}

func TestPdtextGGUFMatchesHF(t *testing.T) {
	hf, ref := loadPdtext(t)
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(testshared.Path(t, "models/pdtext-llama-28m-gguf/README.md")), "*.gguf"))
	if len(files) == 0 {
		t.Fatal("no .gguf files in models/pdtext-llama-28m-gguf")
	}
	md, err := readGGUFMetadata(files[0])
	if err != nil {
		t.Fatal(err)
	}
	g, err := FromGGUF(md)
	if err != nil {
		t.Fatal(err)
	}
	if g.BOS() != 0 || g.EOS() != 0 || g.VocabSize() != 4096 {
		t.Fatalf("GGUF BOS %d EOS %d vocab %d", g.BOS(), g.EOS(), g.VocabSize())
	}
	if got := g.Encode(ref.ExampleText, false); !reflect.DeepEqual(got, ref.ExampleIDs) {
		t.Errorf("GGUF Encode(example) = %v, want %v", got, ref.ExampleIDs)
	}
	// add_bos_token is true in the GGUF conversion.
	if got := g.Encode(ref.GreedyPrompt, true); !reflect.DeepEqual(got, append([]int{0}, ref.GreedyPromptID...)) {
		t.Errorf("GGUF Encode(prompt, true) = %v", got)
	}
	hs, gs := referenceStream(t, hf, 0), referenceStream(t, g, 0)
	if !reflect.DeepEqual(hs, gs) {
		t.Errorf("GGUF stream differs from tokenizer.json stream (%d vs %d tokens)", len(gs), len(hs))
	}
	for _, s := range roundTripStrings {
		if a, b := hf.Encode(s, false), g.Encode(s, false); !reflect.DeepEqual(a, b) {
			t.Errorf("%q: HF %v GGUF %v", s, a, b)
		}
		if got := g.Decode(g.Encode(s, false)); got != s {
			t.Errorf("GGUF round trip %q → %q", s, got)
		}
	}
}

// stories splits the TinyStories sample on blank lines and strips each.
func stories(t *testing.T) []string {
	data, err := os.ReadFile(testshared.Path(t, "data/tinystories-valid-sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n\n") {
		if s = pyStrip(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

var storiesTable = []struct {
	n     int
	first []int
}{
	{620, []int{1, 403, 407, 261, 378, 432, 322, 261, 370, 272, 414, 276}},
	{234, []int{1, 403, 407, 261, 378, 432, 322, 261, 262, 423, 388, 348}},
	{388, []int{1, 403, 407, 261, 378, 432, 383, 286, 261, 308, 277, 428}},
}

func TestLlama2cStories(t *testing.T) {
	tok, err := LoadLlama2c(testshared.Path(t, "models/stories260K/tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 512 || tok.BOS() != 1 || tok.EOS() != 2 {
		t.Fatalf("vocab %d BOS %d EOS %d", tok.VocabSize(), tok.BOS(), tok.EOS())
	}
	st := stories(t)
	for i, want := range storiesTable {
		ids := tok.Encode(st[i], true)
		if len(ids) != want.n || !reflect.DeepEqual(ids[:len(want.first)], want.first) {
			t.Errorf("story %d: %d tokens, first %v; want %d, %v", i+1, len(ids), ids[:min(12, len(ids))], want.n, want.first)
		}
		if got := tok.Decode(ids); got != st[i] {
			t.Errorf("story %d: decode differs from text", i+1)
		}
	}
	for _, s := range []string{"Once upon a time", "a  b\n\nc", "日本 😀", "x\ty"} {
		if got := tok.Decode(tok.Encode(s, false)); got != s {
			t.Errorf("round trip %q → %q", s, got)
		}
	}
	if got := tok.Encode("", true); !reflect.DeepEqual(got, []int{1}) {
		t.Errorf("Encode(\"\", true) = %v", got)
	}
}

func TestStoriesGGUFMatchesLlama2c(t *testing.T) {
	l2c, err := LoadLlama2c(testshared.Path(t, "models/stories260K/tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	md, err := readGGUFMetadata(testshared.Path(t, "models/stories260K-gguf/stories260K-f32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := FromGGUF(md)
	if err != nil {
		t.Fatal(err)
	}
	if g.BOS() != 1 || g.EOS() != 2 || g.VocabSize() != 512 {
		t.Fatalf("GGUF BOS %d EOS %d vocab %d", g.BOS(), g.EOS(), g.VocabSize())
	}
	texts := append(stories(t), roundTripStrings[1:]...)
	for i, s := range texts {
		if strings.Contains(s, "<s>") || strings.Contains(s, "</s>") || strings.Contains(s, "<unk>") {
			continue // llama2.c does not match special tokens in text
		}
		a, b := l2c.Encode(s, true), g.Encode(s, true)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("text %d %.40q: llama2c %v\n GGUF %v", i, s, a[:min(20, len(a))], b[:min(20, len(b))])
		}
		if got := g.Decode(g.Encode(s, false)); got != s {
			t.Errorf("GGUF round trip %q → %q", s, got)
		}
	}
}

func TestPdtextConcurrentEncode(t *testing.T) {
	tok, ref := loadPdtext(t)
	done := make(chan []int)
	for i := 0; i < 4; i++ {
		go func() { done <- tok.Encode(ref.ExampleText, false) }()
	}
	for i := 0; i < 4; i++ {
		if got := <-done; !reflect.DeepEqual(got, ref.ExampleIDs) {
			t.Errorf("concurrent Encode = %v", got)
		}
	}
}
