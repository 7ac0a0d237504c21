package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
)

// Llama2c is the tokenizer of Karpathy's llama2.c (tokenizer.bin): pieces
// with scores, encoded by greedy highest-score merges with byte fallback.
type Llama2c struct {
	maxTokenLen int
	v           spmVocab
	bos, eos    int
}

// LoadLlama2c reads a llama2.c tokenizer.bin: int32 max_token_length, then
// for each token float32 score, int32 length and the bytes. The vocabulary
// size is the number of records in the file.
func LoadLlama2c(path string) (*Llama2c, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return ParseLlama2c(path, data)
}

// ParseLlama2c parses the contents of a llama2.c tokenizer.bin; name is used
// in errors.
func ParseLlama2c(name string, data []byte) (*Llama2c, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("tokenizer: %s: too short for a llama2.c tokenizer (%d bytes)", name, len(data))
	}
	maxLen := int32(binary.LittleEndian.Uint32(data))
	if maxLen < 0 {
		return nil, fmt.Errorf("tokenizer: %s: negative max_token_length %d", name, maxLen)
	}
	var pieces []string
	var scores []float32
	for off := 4; off < len(data); {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("tokenizer: %s: token %d: record header truncated at byte %d", name, len(pieces), off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int32(binary.LittleEndian.Uint32(data[off+4:]))
		off += 8
		if n < 0 || int(n) > len(data)-off {
			return nil, fmt.Errorf("tokenizer: %s: token %d: length %d runs past the end of the file", name, len(pieces), n)
		}
		pieces = append(pieces, string(data[off:off+int(n)]))
		scores = append(scores, score)
		off += int(n)
	}
	if len(pieces) == 0 {
		return nil, fmt.Errorf("tokenizer: %s: no tokens", name)
	}
	t := &Llama2c{maxTokenLen: int(maxLen), v: newSPMVocab(pieces, scores, false), bos: 1, eos: 2}
	if len(pieces) <= 2 {
		t.eos = -1
	}
	if len(pieces) <= 1 {
		t.bos = -1
	}
	return t, nil
}

// VocabSize is the number of pieces.
func (t *Llama2c) VocabSize() int { return len(t.v.pieces) }

// Piece is the stored piece of id ("" when out of range).
func (t *Llama2c) Piece(id int) string {
	if id < 0 || id >= len(t.v.pieces) {
		return ""
	}
	return t.v.pieces[id]
}

// Score is the merge score of id (0 when out of range).
func (t *Llama2c) Score(id int) float32 {
	if id < 0 || id >= len(t.v.scores) {
		return 0
	}
	return t.v.scores[id]
}

// MaxTokenLength is the max_token_length field of the file.
func (t *Llama2c) MaxTokenLength() int { return t.maxTokenLen }

// BOS is 1 (llama2.c's convention).
func (t *Llama2c) BOS() int { return t.bos }

// EOS is 2 (llama2.c's convention).
func (t *Llama2c) EOS() int { return t.eos }

// SetSpecial overrides the BOS and EOS ids (-1 for none).
func (t *Llama2c) SetSpecial(bos, eos int) { t.bos, t.eos = bos, eos }

// Encode tokenizes text exactly as llama2.c's encode: BOS (with
// addSpecial), the " " piece as a dummy prefix when text is not empty, each
// UTF-8 sequence as a piece or as byte tokens (byte+3), then repeated
// highest-score merges. It matches no special tokens in the text. Unlike the
// C code, which reads text as a C string and so stops at the first NUL byte,
// a NUL is encoded like any other byte (its byte token), so nothing after it
// is lost.
func (t *Llama2c) Encode(text string, addSpecial bool) []int {
	var out []int
	if addSpecial && t.bos >= 0 {
		out = append(out, t.bos)
	}
	if text == "" {
		return out
	}
	syms := make([]spmSym, 0, len(text)+1)
	if id, ok := t.v.lookup[" "]; ok {
		syms = append(syms, spmSym{text: " ", id: id})
	}
	n := len(t.v.pieces)
	for i := 0; i < len(text); {
		// A lead byte and up to three continuation bytes.
		j := i + 1
		for j < len(text) && j-i < 4 && text[j]&0xC0 == 0x80 {
			j++
		}
		s := text[i:j]
		if id, ok := t.v.lookup[s]; ok {
			syms = append(syms, spmSym{text: s, id: id})
		} else {
			for k := 0; k < len(s); k++ {
				id := int(s[k]) + 3
				if id < n {
					syms = append(syms, spmSym{text: t.v.pieces[id], id: id})
				}
			}
		}
		i = j
	}
	for _, s := range t.v.spmMerge(syms, -1e10) {
		out = append(out, s.id)
	}
	return out
}

// Decode renders ids as llama2.c does: a leading space is dropped from the
// first piece and from a piece that follows BOS, "<0xXX>" pieces become raw
// bytes, and BOS and EOS (which llama2.c never prints) render as nothing.
// The result is the raw bytes, which may be invalid UTF-8 if ids split a
// character.
func (t *Llama2c) Decode(ids []int) string {
	var b strings.Builder
	prev := -1
	for i, id := range ids {
		if id < 0 || id >= len(t.v.pieces) {
			continue
		}
		p := t.v.pieces[id]
		switch {
		case id == t.bos || id == t.eos:
			p = ""
		case (i == 0 || prev == t.bos) && strings.HasPrefix(p, " "):
			p = p[1:]
		}
		if c, ok := parseLlama2cByte(p); ok {
			b.WriteByte(c)
		} else {
			b.WriteString(p)
		}
		prev = id
	}
	return b.String()
}
