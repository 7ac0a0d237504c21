package tokenizer

import (
	"strings"
	"sync"
	"unicode/utf8"
)

// BPE is a byte-pair-encoding tokenizer as Hugging Face tokenizers runs it:
// added-token splitting, normalizers, pre-tokenizers, the BPE model (ranked
// merges, optional byte fallback and unknown token), a post-processor and
// decoders. Build one with LoadHF, ParseHF or FromGGUF. It is safe for
// concurrent use.
type BPE struct {
	vocab  map[string]int
	pieces []string // id → token text (model vocabulary and added tokens)

	merges       map[uint64]mergeRule
	ignoreMerges bool
	byteFallback bool
	byteIDs      [256]int // <0xXX> token ids, -1 when absent
	unkID        int      // -1 when none
	fuseUnk      bool
	contPrefix   string
	eowSuffix    string

	normalizers []normalizer
	preTok      []preTokenizer
	added       addedVocab
	prefix      []int // post-processor ids before the sequence
	suffix      []int // post-processor ids after the sequence
	decoders    []decoder
	noDecoder   bool

	bos, eos int
	ends     []int // special end-of-generation ids besides EOS

	mu    sync.Mutex
	cache map[string][]int
}

type mergeRule struct {
	rank int32
	id   int32
}

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

const maxCacheEntries = 1 << 17

// VocabSize is the number of ids (one past the largest id).
func (t *BPE) VocabSize() int { return len(t.pieces) }

// Piece is the raw vocabulary entry of id ("" when out of range).
func (t *BPE) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// TokenID returns the id of a vocabulary entry or added token.
func (t *BPE) TokenID(piece string) (int, bool) {
	if id, ok := t.added.byContent[piece]; ok {
		return id, true
	}
	id, ok := t.vocab[piece]
	return id, ok
}

// BOS is the begin-of-sequence id, -1 when absent.
func (t *BPE) BOS() int { return t.bos }

// EOS is the end-of-sequence id, -1 when absent.
func (t *BPE) EOS() int { return t.eos }

// SetSpecial overrides the BOS and EOS ids (-1 for none), for example with
// the values of a model's config.json.
func (t *BPE) SetSpecial(bos, eos int) { t.bos, t.eos = bos, eos }

// EndTokens lists EOS and every special end-of-generation token (see the
// package function EndTokens).
func (t *BPE) EndTokens() []int { return withEOS(t.eos, t.ends) }

// piece of text between added tokens; first is true when it starts at
// offset 0 of the original input.
type textPiece struct {
	text  string
	first bool
}

// Encode tokenizes text (see Tokenizer.Encode).
func (t *BPE) Encode(text string, addSpecial bool) []int {
	out := make([]int, 0, len(text)/3+len(t.prefix)+len(t.suffix)+1)
	if addSpecial {
		out = append(out, t.prefix...)
	}
	for _, seg := range t.added.split(text, false) {
		if seg.id >= 0 {
			out = append(out, seg.id)
			continue
		}
		norm := seg.text
		for _, n := range t.normalizers {
			norm = n(norm)
		}
		for _, seg2 := range t.added.split(norm, true) {
			if seg2.id >= 0 {
				out = append(out, seg2.id)
				continue
			}
			pieces := []textPiece{{seg2.text, seg.start == 0 && seg2.start == 0}}
			for _, p := range t.preTok {
				pieces = p(pieces)
			}
			for _, p := range pieces {
				if p.text != "" {
					out = t.encodeWord(p.text, out)
				}
			}
		}
	}
	if addSpecial {
		out = append(out, t.suffix...)
	}
	return out
}

// encodeWord appends the BPE ids of one pre-token.
func (t *BPE) encodeWord(w string, dst []int) []int {
	if t.ignoreMerges {
		if id, ok := t.vocab[w]; ok {
			return append(dst, id)
		}
	}
	t.mu.Lock()
	ids, ok := t.cache[w]
	t.mu.Unlock()
	if ok {
		return append(dst, ids...)
	}
	ids = t.mergeWord(w)
	t.mu.Lock()
	if t.cache == nil || len(t.cache) >= maxCacheEntries {
		t.cache = make(map[string][]int)
	}
	t.cache[w] = ids
	t.mu.Unlock()
	return append(dst, ids...)
}

// bpeSym is one symbol of a word being merged (a doubly linked list).
type bpeSym struct {
	id         int
	prev, next int
	alive      bool
}

type bpeCand struct {
	rank, pos, id int32
}

// mergeWord splits w into characters and applies merges lowest rank first
// (leftmost on ties), exactly as the Hugging Face BPE model does.
func (t *BPE) mergeWord(w string) []int {
	syms := make([]bpeSym, 0, len(w))
	pendingUnk := -1 // pending unknown token (for fuse_unk)
	addSym := func(id int) {
		syms = append(syms, bpeSym{id: id, alive: true})
	}
	nRunes := utf8.RuneCountInString(w)
	k := 0
	for i := 0; i < len(w); {
		_, n := utf8.DecodeRuneInString(w[i:])
		ch := w[i : i+n]
		i += n
		s := ch
		if t.contPrefix != "" && k > 0 {
			s = t.contPrefix + s
		}
		if t.eowSuffix != "" && k == nRunes-1 {
			s += t.eowSuffix
		}
		k++
		if id, ok := t.vocab[s]; ok {
			if pendingUnk >= 0 {
				addSym(pendingUnk)
				pendingUnk = -1
			}
			addSym(id)
			continue
		}
		if t.byteFallback {
			all := true
			for j := 0; j < len(ch); j++ {
				if t.byteIDs[ch[j]] < 0 {
					all = false
					break
				}
			}
			if all {
				for j := 0; j < len(ch); j++ {
					addSym(t.byteIDs[ch[j]])
				}
				continue
			}
		}
		if t.unkID >= 0 {
			if pendingUnk >= 0 && !t.fuseUnk {
				addSym(pendingUnk)
			}
			pendingUnk = t.unkID
		}
	}
	if pendingUnk >= 0 {
		addSym(pendingUnk)
	}
	for i := range syms {
		syms[i].prev = i - 1
		syms[i].next = i + 1
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	if len(syms) > 1 && len(t.merges) > 0 {
		t.applyMerges(syms)
	}
	ids := make([]int, 0, len(syms))
	for i := 0; i >= 0 && i < len(syms); i = syms[i].next {
		ids = append(ids, syms[i].id)
	}
	return ids
}

func candLess(a, b bpeCand) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

// applyMerges runs the priority-queue merge loop over syms.
func (t *BPE) applyMerges(syms []bpeSym) {
	heap := make([]bpeCand, 0, len(syms))
	push := func(c bpeCand) {
		heap = append(heap, c)
		i := len(heap) - 1
		for i > 0 {
			p := (i - 1) / 2
			if !candLess(heap[i], heap[p]) {
				break
			}
			heap[i], heap[p] = heap[p], heap[i]
			i = p
		}
	}
	pop := func() bpeCand {
		top := heap[0]
		last := len(heap) - 1
		heap[0] = heap[last]
		heap = heap[:last]
		i := 0
		for {
			l, r, m := 2*i+1, 2*i+2, i
			if l < len(heap) && candLess(heap[l], heap[m]) {
				m = l
			}
			if r < len(heap) && candLess(heap[r], heap[m]) {
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
		if m, ok := t.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			push(bpeCand{m.rank, int32(i), m.id})
		}
	}
	for len(heap) > 0 {
		c := pop()
		pos := int(c.pos)
		s := &syms[pos]
		if !s.alive || s.next < 0 {
			continue
		}
		nx := s.next
		m, ok := t.merges[pairKey(s.id, syms[nx].id)]
		if !ok || m.id != c.id || m.rank != c.rank {
			continue // stale entry
		}
		s.id = int(c.id)
		syms[nx].alive = false
		s.next = syms[nx].next
		if s.next >= 0 {
			syms[s.next].prev = pos
		}
		if s.prev >= 0 {
			if m, ok := t.merges[pairKey(syms[s.prev].id, s.id)]; ok {
				push(bpeCand{m.rank, int32(s.prev), m.id})
			}
		}
		if s.next >= 0 {
			if m, ok := t.merges[pairKey(s.id, syms[s.next].id)]; ok {
				push(bpeCand{m.rank, int32(pos), m.id})
			}
		}
	}
}

// Decode turns ids back into text through the tokenizer's decoders
// (special tokens are rendered as their text; unknown ids are skipped).
func (t *BPE) Decode(ids []int) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if id >= 0 && id < len(t.pieces) {
			toks = append(toks, t.pieces[id])
		}
	}
	if t.noDecoder {
		return strings.Join(toks, " ")
	}
	for _, d := range t.decoders {
		toks = d(toks)
	}
	return strings.Join(toks, "")
}
