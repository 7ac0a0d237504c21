package tokenizer

import (
	"encoding/binary"
	"math"
	"os"
	"testing"
	"unicode/utf8"

	"github.com/terse-llm/terse/internal/testshared"
)

func FuzzLoadHF(f *testing.F) {
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a","a"]]},"pre_tokenizer":{"type":"Metaspace","replacement":"▁"}}`))
	f.Add([]byte(`{"added_tokens":[{"id":3,"content":"<s>","lstrip":true,"rstrip":true,"single_word":true}],"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"Regex":"\\s"},"content":"▁"}]},"decoder":{"type":"Strip","content":" ","start":1,"stop":1}}`))
	f.Add([]byte(`{"model":{"type":"Unigram"}}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"x"}}],"special_tokens":{"x":{"ids":[9]}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := ParseHF("fuzz.json", data)
		if err != nil {
			return
		}
		for _, s := range []string{"", "a b", "<s> ab\n", "日本 😀 12345"} {
			ids := tok.Encode(s, true)
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("id %d out of range %d", id, tok.VocabSize())
				}
			}
			tok.Decode(ids)
		}
		tok.Decode([]int{-1, 0, 1, 1 << 30})
	})
}

func FuzzEncode(f *testing.F) {
	for _, s := range roundTripStrings {
		f.Add(s)
	}
	var pd *BPE
	if p := testshared.Dir(); p != "" {
		if _, err := os.Stat(p + "/models/pdtext-llama-28m/tokenizer.json"); err == nil {
			var err error
			if pd, err = LoadHF(p + "/models/pdtext-llama-28m/tokenizer.json"); err != nil {
				f.Fatal(err)
			}
		}
	}
	l3 := llama3Fixture(f, true, PatternLlama3)
	qw := llama3Fixture(f, false, PatternQwen2)
	spm := spmFixture(f, "metaspace", true, true)
	legacy := spmFixture(f, "legacy", false, true)
	f.Fuzz(func(t *testing.T, s string) {
		byteLevel := []*BPE{l3, qw}
		if pd != nil {
			byteLevel = append(byteLevel, pd)
		}
		for _, tok := range byteLevel {
			ids := tok.Encode(s, false)
			if got := tok.Decode(ids); utf8.ValidString(s) && got != s {
				t.Fatalf("round trip %q → %v → %q", s, ids, got)
			}
		}
		for _, tok := range []*BPE{spm, legacy} {
			tok.Decode(tok.Encode(s, true))
		}
	})
}

func FuzzLlama2c(f *testing.F) {
	var seed []byte
	seed = binary.LittleEndian.AppendUint32(seed, 4)
	for i, p := range []string{"<unk>", "\n<s>\n", "\n</s>\n", " ", "a", " a", "<0x41>"} {
		seed = binary.LittleEndian.AppendUint32(seed, math.Float32bits(float32(-i)))
		seed = binary.LittleEndian.AppendUint32(seed, uint32(len(p)))
		seed = append(seed, p...)
	}
	f.Add(seed)
	f.Add([]byte{1, 2, 3})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := ParseLlama2c("fuzz.bin", data)
		if err != nil {
			return
		}
		for _, s := range []string{"", "a a", "Aé😀\xff"} {
			ids := tok.Encode(s, true)
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("id %d out of range", id)
				}
			}
			tok.Decode(ids)
		}
	})
}
