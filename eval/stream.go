package eval

import (
	"strings"
	"unicode"
)

// DocSeparator is the line that separates documents in the shared
// evaluation texts.
const DocSeparator = "<|doc|>"

// Encoder is the part of tokenizer.Tokenizer that Stream uses; any
// tokenizer.Tokenizer is one. (A narrow interface keeps eval free of the
// tokenizer package's dependencies.)
type Encoder interface {
	// Encode tokenizes text; without addSpecial no BOS/EOS is added.
	Encode(text string, addSpecial bool) []int
	// BOS is the begin-of-sequence id, -1 when absent.
	BOS() int
}

// Stream builds the token stream that perplexity is measured on.
//
// With docSep non-empty, text is split on every occurrence of docSep, each
// piece is stripped of leading and trailing whitespace, empty pieces are
// dropped, and each remaining document is encoded without special tokens and
// prefixed with tok.BOS() (when the vocabulary has one); the documents are
// concatenated. This is the shared reference protocol (with docSep =
// DocSeparator).
//
// With docSep empty, the whole text is encoded once with BOS prefixed, as
// llama.cpp's perplexity tool does.
func Stream(tok Encoder, text string, docSep string) []int {
	return StreamEOS(tok, text, docSep, -1)
}

// StreamEOS is Stream that, with docSep non-empty and eos ≥ 0 distinct from
// tok.BOS(), also appends eos after each document, as many training and
// evaluation pipelines pack documents (terse eval --doc-eos). Without
// docSep, or with eos < 0 or eos equal to BOS, it is Stream.
func StreamEOS(tok Encoder, text string, docSep string, eos int) []int {
	bos := tok.BOS()
	if eos == bos {
		eos = -1
	}
	if docSep == "" {
		ids := tok.Encode(text, false)
		if bos < 0 {
			return ids
		}
		return append([]int{bos}, ids...)
	}
	var out []int
	for _, doc := range strings.Split(text, docSep) {
		doc = strings.TrimFunc(doc, isSpace)
		if doc == "" {
			continue
		}
		if bos >= 0 {
			out = append(out, bos)
		}
		out = append(out, tok.Encode(doc, false)...)
		if eos >= 0 {
			out = append(out, eos)
		}
	}
	return out
}

// isSpace matches what Python's str.strip removes: Unicode white space plus
// the ASCII information separators U+001C–U+001F.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}
