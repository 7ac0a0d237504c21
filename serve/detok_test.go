package serve

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/tokenizer"
)

// TestTextStreamUTF8 feeds texts with multi-byte runes token by token:
// every piece handed out is whole UTF-8, and the pieces add up to the
// decoded text, for the llama2.c byte-fallback tokenizer and the byte-level
// BPE of pdtext (where a rune's bytes span tokens and the decoder writes
// U+FFFD until the rune is complete).
func TestTextStreamUTF8(t *testing.T) {
	toks := map[string]tokenizer.Tokenizer{"stories260K": openStories(t).Tokenizer}
	if !testing.Short() {
		if dir := testshared.Dir(); dir != "" {
			ck, err := load.Open(testshared.Path(t, "models/pdtext-llama-28m"), load.Options{TokenizerOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			toks["pdtext"] = ck.Tokenizer
		}
	}
	texts := []string{
		"Once upon a time, héllo wörld — naïve café",
		"日本語のテキスト and 中文 mixed in",
		"emoji 🐶🐱 and 𝄞 four-byte runes",
	}
	for name, tok := range toks {
		for _, prompt := range []string{"A", "Ünïcode prompt"} {
			for _, text := range texts {
				p := tok.Encode(prompt, true)
				ids := tok.Encode(prompt+" "+text, true)
				if len(ids) <= len(p) {
					t.Fatalf("%s: %q encodes no longer than its prompt", name, text)
				}
				gen := ids[len(p):]
				full := tok.Decode(ids)
				want := strings.TrimPrefix(full, tok.Decode(ids[:len(p)]))
				ts := newTextStream(tok, ids[:len(p)], nil)
				var got strings.Builder
				for i, id := range gen {
					piece, stopped := ts.add(id)
					if stopped {
						t.Fatalf("%s: stopped without stop strings", name)
					}
					if !utf8.ValidString(piece) || strings.ContainsRune(piece, utf8.RuneError) {
						t.Errorf("%s %q: token %d gave %q, not whole runes", name, text, i, piece)
					}
					got.WriteString(piece)
				}
				got.WriteString(ts.flush())
				if got.String() != want {
					t.Errorf("%s: streamed %q, want %q", name, got.String(), want)
				}
			}
		}
	}
}

// TestTextStreamStops checks stop strings: cut at the first, held back
// while a tail may still become one, released when it does not.
func TestTextStreamStops(t *testing.T) {
	tok := openStories(t).Tokenizer
	for _, tc := range []struct {
		name, text string
		stops      []string
		want       string
		stopped    bool
	}{
		{"none", "the cat sat on the mat", nil, " the cat sat on the mat", false},
		{"word", "the cat sat on the mat", []string{"sat"}, " the cat ", true},
		{"earliest", "the cat sat on the mat", []string{"mat", "on"}, " the cat sat ", true},
		{"across tokens", "the cat sat on the mat", []string{"t s"}, " the ca", true},
		{"never", "the cat sat on the mat", []string{"dog"}, " the cat sat on the mat", false},
		{"newline", "one\n\ntwo", []string{"\n\n"}, " one", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tok.Encode("X", true)
			ids := tok.Encode("X "+tc.text, true)
			ts := newTextStream(tok, p, tc.stops)
			var got strings.Builder
			stopped := false
			for _, id := range ids[len(p):] {
				piece, st := ts.add(id)
				got.WriteString(piece)
				for _, s := range tc.stops {
					if strings.Contains(got.String(), s) {
						t.Fatalf("stop string %q was sent: %q", s, got.String())
					}
				}
				if st {
					stopped = true
					break
				}
			}
			got.WriteString(ts.flush())
			want := tc.want // the llama2.c tokenizer's pieces carry their leading space
			if got.String() != want || stopped != tc.stopped {
				t.Errorf("got %q stopped %v, want %q %v", got.String(), stopped, want, tc.stopped)
			}
		})
	}
}
