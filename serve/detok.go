package serve

import (
	"strings"
	"unicode/utf8"

	"github.com/terse-llm/terse/tokenizer"
)

// detokContext is how many prompt tokens are decoded in front of the
// continuation, so that a decoder's rules for a sequence's first piece (an
// SPM decoder drops its leading space) fall on the prompt, not on the
// continuation, without decoding the whole prompt at every token.
const detokContext = 8

// textStream turns a growing list of generated token ids into text that can
// be sent as it comes: never half a UTF-8 rune (a byte-level or byte-
// fallback token may carry only part of one), never a tail that could
// still grow into a stop string, and nothing at or past the first stop
// string.
type textStream struct {
	tok   tokenizer.Tokenizer
	ctx   []int // prompt tokens decoded in front
	ids   []int // ctx then the generated tokens
	pre   string
	stops []string
	maxSt int
	text  string // the continuation so far, cut at a stop string
	sent  int    // bytes of text already handed out
}

func newTextStream(tok tokenizer.Tokenizer, prompt []int, stops []string) *textStream {
	ctx := prompt[max(0, len(prompt)-detokContext):]
	t := &textStream{tok: tok, ctx: ctx, ids: append([]int(nil), ctx...), stops: stops}
	t.pre = tok.Decode(ctx)
	for _, s := range stops {
		t.maxSt = max(t.maxSt, len(s))
	}
	return t
}

// add appends a generated token and returns the text that became final and
// whether a stop string was reached (the stop string and what follows it
// are never returned).
func (t *textStream) add(id int) (string, bool) {
	t.ids = append(t.ids, id)
	text := t.tok.Decode(t.ids)
	if strings.HasPrefix(text, t.pre) {
		text = text[len(t.pre):]
	} else {
		text = t.tok.Decode(t.ids[len(t.ctx):])
	}
	if i := firstStop(text, t.stops, max(0, t.sent-t.maxSt)); i >= 0 {
		t.text = text[:i]
		return t.flush(), true
	}
	t.text = text
	end := len(text) - stopPrefixLen(text[min(t.sent, len(text)):], t.stops)
	end = stableEnd(text, t.sent, end)
	if end <= t.sent {
		return "", false
	}
	out := text[t.sent:end]
	t.sent = end
	return out, false
}

// flush returns the rest of the text (at the end of generation).
func (t *textStream) flush() string {
	if t.sent >= len(t.text) {
		return ""
	}
	out := t.text[t.sent:]
	t.sent = len(t.text)
	return out
}

// stableEnd lowers end past a tail of text[from:end] that may still change
// when the next token comes: an incomplete UTF-8 sequence, or replacement
// characters (U+FFFD) that a lossy decoder wrote for one — up to three of
// them, the most a 4-byte rune cut short leaves.
func stableEnd(text string, from, end int) int {
	for k := 0; k < 3 && end > from; k++ {
		r, n := utf8.DecodeLastRuneInString(text[from:end])
		if r != utf8.RuneError {
			break
		}
		end -= n // an invalid byte (n = 1) or a written U+FFFD (n = 3)
	}
	for end > from && !utf8.ValidString(text[from:end]) {
		end--
	}
	return end
}

// firstStop is the earliest index at or after from where one of stops
// begins in text, or -1.
func firstStop(text string, stops []string, from int) int {
	best := -1
	from = min(from, len(text))
	for _, s := range stops {
		if i := strings.Index(text[from:], s); i >= 0 && (best < 0 || from+i < best) {
			best = from + i
		}
	}
	return best
}

// stopPrefixLen is the length of the longest tail of text that is a proper
// prefix of a stop string (text that may yet become one).
func stopPrefixLen(text string, stops []string) int {
	n := 0
	for _, s := range stops {
		for k := min(len(s)-1, len(text)); k > n; k-- {
			if strings.HasSuffix(text, s[:k]) {
				n = k
				break
			}
		}
	}
	return n
}
