package tokenizer

import (
	"math/rand"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func pieces(m matcher, s string) []string {
	var out []string
	for _, p := range m.find(s) {
		out = append(out, s[p[0]:p[1]])
	}
	return out
}

// altRef is an independent reference for a pattern written as ordered
// alternatives: each alternative is an anchored Go regexp, except the
// lookahead \s+(?!\S), which is emulated by backtracking by hand. At each
// position the first alternative that matches wins, as in Oniguruma.
type altRef struct {
	alts []*regexp.Regexp // nil = \s+(?!\S)
}

func newAltRef(alts ...string) altRef {
	var r altRef
	for _, a := range alts {
		if a == `\s+(?!\S)` {
			r.alts = append(r.alts, nil)
			continue
		}
		r.alts = append(r.alts, regexp.MustCompile(`^(?:`+widenSpaceClass(a)+`)`))
	}
	return r
}

func (r altRef) find(s string) [][2]int {
	if s == "" {
		return nil
	}
	out := [][2]int{}
	for i := 0; i < len(s); {
		end := -1
		for _, re := range r.alts {
			if re == nil {
				j := spanWhile(s, i, isSpaceRune)
				for k := j; k > i; {
					if next, _ := runeAt(s, k); k == len(s) || isSpaceRune(next) {
						end = k
						break
					}
					_, n := utf8.DecodeLastRuneInString(s[:k])
					k -= n
				}
			} else if loc := re.FindStringIndex(s[i:]); loc != nil && loc[1] > 0 {
				end = i + loc[1]
			}
			if end > i {
				break
			}
		}
		if end > i {
			out = append(out, [2]int{i, end})
			i = end
			continue
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	return out
}

var (
	refGPT2   = newAltRef(`'s|'t|'re|'ve|'m|'ll|'d`, ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`, `\s+(?!\S)`, `\s+`)
	refLlama3 = newAltRef(`(?i:'s|'t|'re|'ve|'m|'ll|'d)`, `[^\r\n\p{L}\p{N}]?\p{L}+`, `\p{N}{1,3}`, ` ?[^\s\p{L}\p{N}]+[\r\n]*`, `\s*[\r\n]+`, `\s+(?!\S)`, `\s+`)
	refQwen2  = newAltRef(`(?i:'s|'t|'re|'ve|'m|'ll|'d)`, `[^\r\n\p{L}\p{N}]?\p{L}+`, `\p{N}`, ` ?[^\s\p{L}\p{N}]+[\r\n]*`, `\s*[\r\n]+`, `\s+(?!\S)`, `\s+`)
)

var alphabet = []string{"a", "b", "Z", "é", "日", "ж", "s", "t", "S", "T", "r", "e", "R", "E", "v", "l", "L", "m", "d", "D",
	"1", "2", "9", "٣", "²", "Ⅻ", " ", " ", " ", "\t", "\n", "\r", "\u00a0", "\u3000", "\u2003", "'", "'", ".", ",", "!", "-",
	"😀", "\u0301", "_", "$", "\x00", "ſ", "\xff"}

func randomText(rng *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(alphabet[rng.Intn(len(alphabet))])
	}
	return b.String()
}

func TestScannersAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	cases := []struct {
		name string
		scan scanFunc
		ref  altRef
	}{{"gpt2", scanGPT2, refGPT2}, {"llama3", scanLlama3, refLlama3}, {"qwen2", scanQwen2, refQwen2}}
	for _, c := range cases {
		for i := 0; i < 3000; i++ {
			s := randomText(rng, rng.Intn(24))
			if got, want := c.scan.find(s), c.ref.find(s); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %q:\n got %q\nwant %q", c.name, s, pieces(c.scan, s), pieces(c.ref, s))
			}
		}
	}
}

// Where the lookahead cannot matter (no run of two or more white-space
// characters before a non-space), the scanners equal plain Go regexp on
// the pattern without the lookahead alternative.
func TestScannersAgainstGoRegexp(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	noLook := func(p string) *regexp.Regexp {
		return regexp.MustCompile(widenSpaceClass(strings.Replace(p, `|\s+(?!\S)`, "", 1)))
	}
	cases := []struct {
		name string
		scan scanFunc
		re   *regexp.Regexp
	}{{"gpt2", scanGPT2, noLook(PatternGPT2)}, {"llama3", scanLlama3, noLook(PatternLlama3)}, {"qwen2", scanQwen2, noLook(PatternQwen2)}}
	multiSpace := regexp.MustCompile(widenSpaceClass(`\s\s+\S`))
	for _, c := range cases {
		n := 0
		for n < 2000 {
			s := randomText(rng, rng.Intn(20))
			if multiSpace.MatchString(s) || !utf8.ValidString(s) {
				continue
			}
			n++
			if got, want := c.scan.find(s), (regexpMatcher{c.re}).find(s); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %q:\n got %q\nwant %q", c.name, s, pieces(c.scan, s), pieces(regexpMatcher{c.re}, s))
			}
		}
	}
}

func TestScannerHandCases(t *testing.T) {
	cases := []struct {
		scan scanFunc
		in   string
		want []string
	}{
		{scanGPT2, "a   b", []string{"a", "  ", " b"}},
		{scanGPT2, "a   ", []string{"a", "   "}},
		{scanGPT2, "a \nb", []string{"a", " ", "\n", "b"}},
		{scanGPT2, "Hello world", []string{"Hello", " world"}},
		{scanGPT2, "I'm here, it's 2024!", []string{"I", "'m", " here", ",", " it", "'s", " 2024", "!"}},
		{scanGPT2, "DON'T", []string{"DON", "'", "T"}},
		{scanGPT2, " ' x", []string{" '", " x"}},
		{scanLlama3, "DON'T stop", []string{"DON", "'T", " stop"}},
		{scanLlama3, "12345 x", []string{"123", "45", " x"}},
		{scanLlama3, "a \n\n  b", []string{"a", " \n\n", " ", " b"}},
		{scanLlama3, "x...\n\ny", []string{"x", "...\n\n", "y"}},
		{scanLlama3, "(hello)", []string{"(hello", ")"}},
		{scanLlama3, "a   b", []string{"a", "  ", " b"}},
		{scanQwen2, "12345", []string{"1", "2", "3", "4", "5"}},
	}
	for _, c := range cases {
		if got := pieces(c.scan, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSplitBehaviors(t *testing.T) {
	m := literalMatcher{"-"}
	s := "the-final--countdown"
	cases := []struct {
		b    splitBehavior
		want []string
	}{
		{splitIsolated, []string{"the", "-", "final", "-", "-", "countdown"}},
		{splitRemoved, []string{"the", "final", "countdown"}},
		{splitMergedWithPrevious, []string{"the-", "final-", "-", "countdown"}},
		{splitMergedWithNext, []string{"the", "-final", "-", "-countdown"}},
		{splitContiguous, []string{"the", "-", "final", "--", "countdown"}},
	}
	for _, c := range cases {
		if got := splitByMatches(s, m, c.b, false); !reflect.DeepEqual(got, c.want) {
			t.Errorf("behavior %d: got %q, want %q", c.b, got, c.want)
		}
	}
	if got, want := splitByMatches(s, m, splitRemoved, true), []string{"-", "-", "-"}; !reflect.DeepEqual(got, want) {
		t.Errorf("inverted removed: got %q, want %q", got, want)
	}
}

func TestNewPatternMatcher(t *testing.T) {
	if _, err := newPatternMatcher(`\s+(?!\S)|x`); err == nil {
		t.Error("unknown lookahead pattern accepted")
	}
	m, err := newPatternMatcher(`\s+`)
	if err != nil {
		t.Fatal(err)
	}
	if got := pieces(m, "a\u3000\u00a0b"); !reflect.DeepEqual(got, []string{"\u3000\u00a0"}) {
		t.Errorf("Unicode \\s: %q", got)
	}
}

func TestLossyUTF8(t *testing.T) {
	cases := map[string]string{
		"abc":              "abc",
		"a\xffb":           "a\uFFFDb",
		"\xe2\x82":         "\uFFFD",             // truncated 3-byte sequence: one replacement
		"\xe2\x82x":        "\uFFFDx",            // likewise
		"\xf0\x9f\x98":     "\uFFFD",             // truncated 4-byte
		"\xed\xa0\x80":     "\uFFFD\uFFFD\uFFFD", // surrogate: each byte
		"\xc0\xaf":         "\uFFFD\uFFFD",
		"\xf0\x9f\x98\x80": "😀",
	}
	for in, want := range cases {
		if got := lossyUTF8([]byte(in)); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}
