package tokenizer

import (
	"reflect"
	"testing"

	"golang.org/x/text/unicode/norm"
)

func TestAddedTokenSplit(t *testing.T) {
	var av addedVocab
	av.raw.add(&addedToken{id: 1, content: "<mask>", lstrip: true}, "<mask>")
	av.raw.add(&addedToken{id: 2, content: "<r>", rstrip: true}, "<r>")
	av.raw.add(&addedToken{id: 3, content: "cat", singleWord: true}, "cat")
	av.raw.add(&addedToken{id: 4, content: "<mask>x"}, "<mask>x")
	av.raw.finish()
	type seg struct {
		text string
		id   int
	}
	cases := []struct {
		in   string
		want []seg
	}{
		{"I saw a  <mask> cat", []seg{{"I saw a", -1}, {"  <mask>", 1}, {" ", -1}, {"cat", 3}}},
		{"a<r>  b", []seg{{"a", -1}, {"<r>  ", 2}, {"b", -1}}},
		{"concatenate cat.", []seg{{"concatenate ", -1}, {"cat", 3}, {".", -1}}},
		{"<mask>xy", []seg{{"<mask>x", 4}, {"y", -1}}}, // longest match wins
		{"", nil},
	}
	for _, c := range cases {
		var got []seg
		for _, s := range av.split(c.in, false) {
			got = append(got, seg{s.text, s.id})
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestNormalizers(t *testing.T) {
	nfc := nfNormalizer(norm.NFC)
	for in, want := range map[string]string{"e\u0301": "é", "abc": "abc", "Å": "Å", "\u212b": "Å"} {
		if got := nfc(in); got != want {
			t.Errorf("NFC(%q) = %q, want %q", in, got, want)
		}
	}
	if got := prependNormalizer("▁")(""); got != "" {
		t.Errorf("Prepend on empty = %q", got)
	}
	if got := replaceNormalizer(literalMatcher{" "}, "▁")("a b  c"); got != "a▁b▁▁c" {
		t.Errorf("Replace = %q", got)
	}
}

func TestDecoders(t *testing.T) {
	toks := []string{"▁Hey", "<0xE2>", "<0x82>", "<0xAC>", "▁friend", "<0xFF>", "!"}
	got := toks
	for _, d := range []decoder{replaceDecoder(literalMatcher{"▁"}, " "), byteFallbackDecoder, fuseDecoder, stripDecoder(' ', 1, 0)} {
		got = d(got)
	}
	if want := []string{"Hey€ friend\uFFFD!"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Llama-2 decoder chain = %q, want %q", got, want)
	}
	if got := metaspaceDecoder('▁', prependFirst)([]string{"▁Hey", "▁friend"}); !reflect.DeepEqual(got, []string{"Hey", " friend"}) {
		t.Errorf("Metaspace decoder = %q", got)
	}
	if got := byteLevelDecoder([]string{"Ġhello", "Ċ", "<|x|>"}); !reflect.DeepEqual(got, []string{" hello\n<|x|>"}) {
		t.Errorf("ByteLevel decoder = %q", got)
	}
}
