package tokenizer

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The pre-tokenizer regular expressions that Hugging Face tokenizers and
// llama.cpp use. Go's regexp has no lookahead, so the three common ones are
// implemented by hand-written scanners that follow the backtracking
// semantics of Oniguruma (alternatives tried in order, greedy repeats).
const (
	// PatternGPT2 is GPT-2's pre-tokenizer (ByteLevel with use_regex).
	PatternGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// PatternLlama3 is Llama-3's Split pattern.
	PatternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// PatternQwen2 is Qwen2's Split pattern: Llama-3's with single digits.
	PatternQwen2 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// matcher finds the non-overlapping matches of a pattern, leftmost first,
// as byte ranges.
type matcher interface {
	find(s string) [][2]int
}

// scanFunc returns the end of the match starting at byte i of s, or -1.
type scanFunc func(s string, i int) int

func (f scanFunc) find(s string) [][2]int {
	if s == "" {
		return nil
	}
	out := make([][2]int, 0, len(s)/4+1)
	for i := 0; i < len(s); {
		if e := f(s, i); e > i {
			out = append(out, [2]int{i, e})
			i = e
			continue
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	return out
}

type regexpMatcher struct{ re *regexp.Regexp }

func (m regexpMatcher) find(s string) [][2]int {
	var out [][2]int
	for _, p := range m.re.FindAllStringIndex(s, -1) {
		if p[1] > p[0] {
			out = append(out, [2]int{p[0], p[1]})
		}
	}
	return out
}

type literalMatcher struct{ lit string }

func (m literalMatcher) find(s string) [][2]int {
	var out [][2]int
	if m.lit == "" {
		return nil
	}
	for i := 0; ; {
		j := strings.Index(s[i:], m.lit)
		if j < 0 {
			return out
		}
		out = append(out, [2]int{i + j, i + j + len(m.lit)})
		i += j + len(m.lit)
	}
}

// newPatternMatcher recognises the well-known lookahead patterns and falls
// back to Go's regexp (with \s widened to Unicode white space) for others.
func newPatternMatcher(pattern string) (matcher, error) {
	switch pattern {
	case PatternGPT2:
		return scanFunc(scanGPT2), nil
	case PatternLlama3:
		return scanFunc(scanLlama3), nil
	case PatternQwen2:
		return scanFunc(scanQwen2), nil
	}
	if strings.Contains(pattern, "(?=") || strings.Contains(pattern, "(?!") ||
		strings.Contains(pattern, "(?<=") || strings.Contains(pattern, "(?<!") {
		return nil, fmt.Errorf("pre-tokenizer pattern %q uses lookaround, which is only supported for the GPT-2, Llama-3 and Qwen2 patterns", pattern)
	}
	re, err := regexp.Compile(widenSpaceClass(pattern))
	if err != nil {
		return nil, fmt.Errorf("pre-tokenizer pattern %q: %v", pattern, err)
	}
	return regexpMatcher{re}, nil
}

// unicodeSpaces lists Unicode White_Space as a character-class body.
const unicodeSpaces = `\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`

// widenSpaceClass rewrites \s and \S so Go's regexp sees Unicode white space
// (Go's \s is ASCII only; Oniguruma's and Rust's are Unicode).
func widenSpaceClass(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' && i+1 < len(p) {
			n := p[i+1]
			switch {
			case n == 's' && inClass:
				b.WriteString(unicodeSpaces)
			case n == 's':
				b.WriteString("[" + unicodeSpaces + "]")
			case n == 'S' && !inClass:
				b.WriteString("[^" + unicodeSpaces + "]")
			default:
				b.WriteByte(c)
				b.WriteByte(n)
			}
			i++
			continue
		}
		if c == '[' && !inClass {
			inClass = true
			b.WriteByte(c)
			// A ']' or '^]' right after '[' is literal.
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
			continue
		}
		if c == ']' && inClass {
			inClass = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isSpaceRune(r rune) bool { return unicode.IsSpace(r) }
func isLetter(r rune) bool    { return unicode.IsLetter(r) }
func isNumber(r rune) bool    { return unicode.IsNumber(r) }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isSpaceRune(r) && !isLetter(r) && !isNumber(r) }

func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	c := s[i]
	if c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// spanWhile returns the end of the run of runes from i satisfying f.
func spanWhile(s string, i int, f func(rune) bool) int {
	for i < len(s) {
		r, n := runeAt(s, i)
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// contraction matches 's 't 're 've 'm 'll 'd at i (optionally ignoring case).
func contraction(s string, i int, fold bool) int {
	if i >= len(s) || s[i] != '\'' {
		return -1
	}
	r1, n1 := runeAt(s, i+1)
	lower := func(r rune) rune {
		if !fold {
			return r
		}
		if r == 0x17F { // LATIN SMALL LETTER LONG S folds to s
			return 's'
		}
		if r < utf8.RuneSelf {
			return unicode.ToLower(r)
		}
		return r
	}
	switch lower(r1) {
	case 's', 't', 'm', 'd':
		return i + 1 + n1
	}
	r2, n2 := runeAt(s, i+1+n1)
	switch {
	case lower(r1) == 'r' && lower(r2) == 'e',
		lower(r1) == 'v' && lower(r2) == 'e',
		lower(r1) == 'l' && lower(r2) == 'l':
		return i + 1 + n1 + n2
	}
	return -1
}

// spaceRunNoLookahead is \s+(?!\S) followed by the \s+ alternative: the
// white-space run from i, leaving its last rune for the next token when
// a non-space rune follows.
func whitespaceRun(s string, i int) int {
	r, _ := runeAt(s, i)
	if r < 0 || !isSpaceRune(r) {
		return -1
	}
	j := spanWhile(s, i, isSpaceRune)
	if j < len(s) {
		_, last := utf8.DecodeLastRuneInString(s[:j])
		if j-last > i {
			return j - last
		}
	}
	return j
}

// scanGPT2 implements PatternGPT2.
func scanGPT2(s string, i int) int {
	if e := contraction(s, i, false); e > 0 {
		return e
	}
	r, n := runeAt(s, i)
	j := i
	if r == ' ' {
		r2, n2 := runeAt(s, i+1)
		if r2 >= 0 && !isSpaceRune(r2) {
			r, n, j = r2, n2, i+1
		}
	}
	switch {
	case isLetter(r):
		return spanWhile(s, j+n, isLetter)
	case isNumber(r):
		return spanWhile(s, j+n, isNumber)
	case r >= 0 && isOther(r):
		return spanWhile(s, j+n, isOther)
	}
	return whitespaceRun(s, i)
}

func scanLlama3(s string, i int) int { return scanLlama3Digits(s, i, 3) }
func scanQwen2(s string, i int) int  { return scanLlama3Digits(s, i, 1) }

func isCRLF(r rune) bool { return r == '\r' || r == '\n' }

// scanLlama3Digits implements PatternLlama3 (maxDigits 3) and PatternQwen2
// (maxDigits 1).
func scanLlama3Digits(s string, i int, maxDigits int) int {
	if e := contraction(s, i, true); e > 0 {
		return e
	}
	r, n := runeAt(s, i)
	if r < 0 {
		return -1
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isLetter(r) {
		return spanWhile(s, i+n, isLetter)
	}
	if !isCRLF(r) && !isNumber(r) {
		if r2, n2 := runeAt(s, i+n); r2 >= 0 && isLetter(r2) {
			return spanWhile(s, i+n+n2, isLetter)
		}
	}
	// \p{N}{1,maxDigits}
	if isNumber(r) {
		j := i + n
		for k := 1; k < maxDigits; k++ {
			r2, n2 := runeAt(s, j)
			if r2 < 0 || !isNumber(r2) {
				break
			}
			j += n2
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	j := i
	rr, nn := r, n
	if r == ' ' {
		if r2, n2 := runeAt(s, i+1); r2 >= 0 && isOther(r2) {
			j, rr, nn = i+1, r2, n2
		}
	}
	if isOther(rr) {
		e := spanWhile(s, j+nn, isOther)
		return spanWhile(s, e, isCRLF)
	}
	// \s*[\r\n]+
	if isSpaceRune(r) {
		end := spanWhile(s, i, isSpaceRune)
		// The last \r or \n inside the run ends the match.
		for k := end; k > i; {
			pr, pn := utf8.DecodeLastRuneInString(s[:k])
			if isCRLF(pr) {
				return k
			}
			k -= pn
		}
		return whitespaceRun(s, i)
	}
	return -1
}

// splitBehavior is how Split and other pre-tokenizers treat matches.
type splitBehavior int

const (
	splitIsolated splitBehavior = iota
	splitRemoved
	splitMergedWithPrevious
	splitMergedWithNext
	splitContiguous
)

// splitByMatches cuts s at the matches of m according to behavior (and
// invert, which swaps the roles of matches and gaps), dropping empty pieces.
func splitByMatches(s string, m matcher, behavior splitBehavior, invert bool) []string {
	type seg struct {
		a, b  int
		match bool
	}
	var segs []seg
	prev := 0
	for _, p := range m.find(s) {
		if p[0] > prev {
			segs = append(segs, seg{prev, p[0], false})
		}
		segs = append(segs, seg{p[0], p[1], true})
		prev = p[1]
	}
	if prev < len(s) {
		segs = append(segs, seg{prev, len(s), false})
	}
	if invert {
		for k := range segs {
			segs[k].match = !segs[k].match
		}
	}
	var out []string
	switch behavior {
	case splitIsolated:
		for _, g := range segs {
			out = append(out, s[g.a:g.b])
		}
	case splitRemoved:
		for _, g := range segs {
			if !g.match {
				out = append(out, s[g.a:g.b])
			}
		}
	case splitMergedWithPrevious:
		start := 0
		for k, g := range segs {
			if g.match || k == len(segs)-1 {
				if g.b > start {
					out = append(out, s[start:g.b])
				}
				start = g.b
			}
		}
	case splitMergedWithNext:
		start := 0
		for k, g := range segs {
			if g.match && g.a > start {
				out = append(out, s[start:g.a])
				start = g.a
			}
			if k == len(segs)-1 && g.b > start {
				out = append(out, s[start:g.b])
			}
		}
	case splitContiguous:
		for k := 0; k < len(segs); {
			e := k + 1
			for e < len(segs) && segs[e].match && segs[k].match {
				e++
			}
			out = append(out, s[segs[k].a:segs[e-1].b])
			k = e
		}
	}
	return out
}
