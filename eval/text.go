package eval

import (
	"fmt"
	"unicode/utf8"
)

// CheckText looks at the bytes of a text file given to evaluate or
// calibrate on, named name in messages. It returns an error for a file with
// no text at all (empty or only white space) and for one that looks binary
// (over a tenth of its bytes NUL, other control characters or invalid
// UTF-8), and a warning (empty when there is none) for a text with a few
// such bytes: tokenizers encode them, but they are seldom meant.
func CheckText(name string, data []byte) (warning string, err error) {
	var nul, ctrl, bad, space int
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			switch {
			case c == 0:
				nul++
			case c == '\t' || c == '\n' || c == '\r' || c == ' ' || c == '\f' || c == '\v':
				space++
			case c < 0x20 || c == 0x7f:
				ctrl++
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			bad++
		}
		i += n
	}
	if space == len(data) {
		if len(data) == 0 {
			return "", fmt.Errorf("%s is empty: no text to evaluate", name)
		}
		return "", fmt.Errorf("%s holds only white space (%d bytes): no text to evaluate", name, len(data))
	}
	odd := nul + ctrl + bad
	if odd == 0 {
		return "", nil
	}
	what := fmt.Sprintf("%d NUL, %d other control and %d invalid UTF-8 bytes of %d", nul, ctrl, bad, len(data))
	if odd*10 > len(data) {
		return "", fmt.Errorf("%s looks binary, not text: %s", name, what)
	}
	return fmt.Sprintf("%s is not clean text: %s (they are encoded as bytes)", name, what), nil
}
