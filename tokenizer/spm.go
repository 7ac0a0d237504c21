package tokenizer

import (
	"strconv"
	"strings"
)

// spmVocab is a SentencePiece-style vocabulary: pieces with scores.
type spmVocab struct {
	pieces  []string
	scores  []float32
	lookup  map[string]int
	byteIDs [256]int // ids of the <0xXX> pieces, -1 when absent
}

func newSPMVocab(pieces []string, scores []float32, lastWins bool) spmVocab {
	v := spmVocab{pieces: pieces, scores: scores, lookup: make(map[string]int, len(pieces))}
	for i, p := range pieces {
		if _, dup := v.lookup[p]; dup && !lastWins {
			continue
		}
		v.lookup[p] = i
	}
	for b := range v.byteIDs {
		v.byteIDs[b] = -1
	}
	for i, p := range pieces {
		if b, ok := parseByteToken(p); ok && v.byteIDs[b] < 0 {
			v.byteIDs[b] = i
		}
	}
	return v
}

// spmSym is a symbol in the score-merging loop: its text and id (-1 when
// the text is not a vocabulary piece).
type spmSym struct {
	text       string
	id         int
	prev, next int
	ver        int32 // bumped whenever the symbol changes or dies
	alive      bool
}

type spmCand struct {
	score       float32
	left, right int
	lver, rver  int32
	id          int
	text        string
}

func spmCandBetter(a, b *spmCand) bool {
	return a.score > b.score || (a.score == b.score && a.left < b.left)
}

// spmMerge repeatedly merges the adjacent pair whose concatenation is a
// vocabulary piece with the highest score (leftmost on ties), as llama2.c
// and llama.cpp's SPM tokenizer do. Pairs scoring at or below minScore are
// never merged. It returns the surviving symbols in order.
func (v *spmVocab) spmMerge(syms []spmSym, minScore float32) []spmSym {
	for i := range syms {
		syms[i].prev, syms[i].next, syms[i].alive = i-1, i+1, true
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	var heap []spmCand
	push := func(l, r int) {
		text := syms[l].text + syms[r].text
		id, ok := v.lookup[text]
		if !ok || id >= len(v.scores) || !(v.scores[id] > minScore) {
			return
		}
		heap = append(heap, spmCand{score: v.scores[id], left: l, right: r,
			lver: syms[l].ver, rver: syms[r].ver, id: id, text: text})
		i := len(heap) - 1
		for i > 0 {
			p := (i - 1) / 2
			if !spmCandBetter(&heap[i], &heap[p]) {
				break
			}
			heap[i], heap[p] = heap[p], heap[i]
			i = p
		}
	}
	pop := func() spmCand {
		top := heap[0]
		last := len(heap) - 1
		heap[0] = heap[last]
		heap = heap[:last]
		i := 0
		for {
			l, r, m := 2*i+1, 2*i+2, i
			if l < len(heap) && spmCandBetter(&heap[l], &heap[m]) {
				m = l
			}
			if r < len(heap) && spmCandBetter(&heap[r], &heap[m]) {
				m = r
			}
			if m == i {
				break
			}
			heap[i], heap[m] = heap[m], heap[i]
			i = m
		}
		return top
	}
	for i := 0; i+1 < len(syms); i++ {
		push(i, i+1)
	}
	for len(heap) > 0 {
		c := pop()
		l, r := &syms[c.left], &syms[c.right]
		if !l.alive || !r.alive || l.ver != c.lver || r.ver != c.rver || l.next != c.right {
			continue
		}
		l.text, l.id = c.text, c.id
		l.ver++
		r.alive = false
		r.ver++
		l.next = r.next
		if l.next >= 0 {
			syms[l.next].prev = c.left
		}
		if l.prev >= 0 {
			push(l.prev, c.left)
		}
		if l.next >= 0 {
			push(c.left, l.next)
		}
	}
	out := syms[:0]
	for i := 0; i >= 0 && i < len(syms); {
		next := syms[i].next
		out = append(out, syms[i])
		i = next
	}
	return out
}

// parseLlama2cByte reads a piece like llama2.c's sscanf("<0x%02hhX>"):
// "<0x" then one or two hex digits.
func parseLlama2cByte(p string) (byte, bool) {
	if !strings.HasPrefix(p, "<0x") {
		return 0, false
	}
	h := p[3:]
	n := 0
	for n < len(h) && n < 2 && isHex(h[n]) {
		n++
	}
	if n == 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(h[:n], 16, 8)
	if err != nil {
		return 0, false
	}
	return byte(v), true
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
