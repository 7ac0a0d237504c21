package tokenizer

import (
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// normalizer rewrites a piece of input text.
type normalizer func(string) string

// preTokenizer splits pieces into smaller pieces (and may rewrite them).
type preTokenizer func([]textPiece) []textPiece

// decoder rewrites the list of token strings while decoding.
type decoder func([]string) []string

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	id         int
	content    string
	singleWord bool
	lstrip     bool
	rstrip     bool
	normalized bool
	special    bool
}

// addedVocab matches added tokens in text, leftmost-longest.
type addedVocab struct {
	byContent map[string]int
	raw       tokenSet // tokens matched on the raw input
	norm      tokenSet // tokens matched on normalized input
}

type tokenSet struct {
	byFirst *[256][]*addedToken // candidates by first byte, longest first
}

func (s *tokenSet) add(tok *addedToken, content string) {
	if content == "" {
		return
	}
	if s.byFirst == nil {
		s.byFirst = new([256][]*addedToken)
	}
	c := *tok
	c.content = content
	s.byFirst[content[0]] = append(s.byFirst[content[0]], &c)
}

func (s *tokenSet) finish() {
	if s.byFirst == nil {
		return
	}
	for k, l := range s.byFirst {
		sort.SliceStable(l, func(i, j int) bool { return len(l[i].content) > len(l[j].content) })
		s.byFirst[k] = l
	}
}

// segment is a piece of text (id -1) or a matched added token.
type segment struct {
	text  string
	start int
	id    int
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) ||
		unicode.Is(unicode.Pc, r) || r == 0x200C || r == 0x200D
}

// split cuts s at the added tokens of the raw or normalized set, honouring
// single_word, lstrip and rstrip as Hugging Face's added vocabulary does.
func (a *addedVocab) split(s string, normalized bool) []segment {
	set := &a.raw
	if normalized {
		set = &a.norm
	}
	if set.byFirst == nil {
		if s == "" {
			return nil
		}
		return []segment{{s, 0, -1}}
	}
	var out []segment
	startOff := 0
	for i := 0; i < len(s); {
		cands := set.byFirst[s[i]]
		var hit *addedToken
		for _, c := range cands {
			if strings.HasPrefix(s[i:], c.content) {
				hit = c
				break
			}
		}
		if hit == nil {
			i++
			continue
		}
		start, stop := i, i+len(hit.content)
		i = stop
		if start < startOff {
			continue
		}
		if hit.singleWord {
			if start > 0 {
				r, _ := utf8.DecodeLastRuneInString(s[:start])
				if isWordRune(r) {
					continue
				}
			}
			if stop < len(s) {
				r, _ := utf8.DecodeRuneInString(s[stop:])
				if isWordRune(r) {
					continue
				}
			}
		}
		if hit.lstrip {
			ns := len(strings.TrimRightFunc(s[:start], unicode.IsSpace))
			start = max(ns, startOff)
		}
		if hit.rstrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
		}
		if startOff < start {
			out = append(out, segment{s[startOff:start], startOff, -1})
		}
		out = append(out, segment{s[start:stop], start, hit.id})
		startOff = stop
	}
	if startOff < len(s) {
		out = append(out, segment{s[startOff:], startOff, -1})
	}
	return out
}

// --- normalizers ---

func prependNormalizer(p string) normalizer {
	return func(s string) string {
		if s == "" {
			return s
		}
		return p + s
	}
}

func replaceNormalizer(m matcher, content string) normalizer {
	return func(s string) string { return replaceMatches(s, m, content) }
}

func replaceMatches(s string, m matcher, content string) string {
	if lm, ok := m.(literalMatcher); ok {
		if lm.lit == "" {
			return s
		}
		return strings.ReplaceAll(s, lm.lit, content)
	}
	var b strings.Builder
	prev := 0
	for _, p := range m.find(s) {
		b.WriteString(s[prev:p[0]])
		b.WriteString(content)
		prev = p[1]
	}
	b.WriteString(s[prev:])
	return b.String()
}

func stripNormalizer(left, right bool) normalizer {
	return func(s string) string {
		if left {
			s = strings.TrimLeftFunc(s, unicode.IsSpace)
		}
		if right {
			s = strings.TrimRightFunc(s, unicode.IsSpace)
		}
		return s
	}
}

// --- pre-tokenizers ---

// byteLevelPre is the ByteLevel pre-tokenizer: optional prefix space,
// optional GPT-2 split, then the byte → rune mapping.
func byteLevelPre(addPrefixSpace, useRegex bool) preTokenizer {
	m := scanFunc(scanGPT2)
	return func(in []textPiece) []textPiece {
		n := 0
		for _, p := range in {
			n += len(p.text)/4 + 1
		}
		out := make([]textPiece, 0, n)
		for _, p := range in {
			s := p.text
			if addPrefixSpace && !strings.HasPrefix(s, " ") {
				s = " " + s
			}
			if !useRegex {
				out = append(out, textPiece{byteLevelEncode(s), p.first})
				continue
			}
			for k, w := range m.find(s) {
				out = append(out, textPiece{byteLevelEncode(s[w[0]:w[1]]), p.first && k == 0})
			}
		}
		return out
	}
}

// splitPre is the Split pre-tokenizer.
func splitPre(m matcher, behavior splitBehavior, invert bool) preTokenizer {
	return func(in []textPiece) []textPiece {
		var out []textPiece
		for _, p := range in {
			for k, w := range splitByMatches(p.text, m, behavior, invert) {
				out = append(out, textPiece{w, p.first && k == 0})
			}
		}
		return out
	}
}

// prependScheme is Metaspace's prepend_scheme.
type prependScheme int

const (
	prependAlways prependScheme = iota
	prependFirst
	prependNever
)

// metaspacePre is the Metaspace pre-tokenizer.
func metaspacePre(rep string, scheme prependScheme, split bool) preTokenizer {
	lm := literalMatcher{rep}
	return func(in []textPiece) []textPiece {
		var out []textPiece
		for _, p := range in {
			s := strings.ReplaceAll(p.text, " ", rep)
			if !strings.HasPrefix(s, rep) && (scheme == prependAlways || (scheme == prependFirst && p.first)) {
				s = rep + s
			}
			if !split {
				out = append(out, textPiece{s, p.first})
				continue
			}
			for k, w := range splitByMatches(s, lm, splitMergedWithNext, false) {
				out = append(out, textPiece{w, p.first && k == 0})
			}
		}
		return out
	}
}

// --- decoders ---

func byteLevelDecoder(toks []string) []string {
	var b []byte
	for _, t := range toks {
		b = byteLevelDecodeToken(b, t)
	}
	return []string{lossyUTF8(b)}
}

func replaceDecoder(m matcher, content string) decoder {
	return func(toks []string) []string {
		out := make([]string, len(toks))
		for i, t := range toks {
			out[i] = replaceMatches(t, m, content)
		}
		return out
	}
}

// parseByteToken reads a "<0xAB>" token.
func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(t[3:5], 16, 8)
	if err != nil {
		return 0, false
	}
	return byte(v), true
}

func byteFallbackDecoder(toks []string) []string {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range toks {
		if b, ok := parseByteToken(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

func fuseDecoder(toks []string) []string { return []string{strings.Join(toks, "")} }

func stripDecoder(content rune, start, stop int) decoder {
	return func(toks []string) []string {
		out := make([]string, len(toks))
		for i, t := range toks {
			rs := []rune(t)
			a := 0
			for a < start && a < len(rs) && rs[a] == content {
				a++
			}
			b := len(rs)
			for k := 0; k < stop && b > a && rs[b-1] == content; k++ {
				b--
			}
			out[i] = string(rs[a:b])
		}
		return out
	}
}

func metaspaceDecoder(rep rune, scheme prependScheme) decoder {
	return func(toks []string) []string {
		out := make([]string, len(toks))
		for i, t := range toks {
			var b strings.Builder
			for _, r := range t {
				if r == rep {
					if i == 0 && scheme != prependNever {
						continue
					}
					b.WriteByte(' ')
				} else {
					b.WriteRune(r)
				}
			}
			out[i] = b.String()
		}
		return out
	}
}
