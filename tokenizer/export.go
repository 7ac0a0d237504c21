package tokenizer

import "sort"

// AddedToken describes one of tokenizer.json's added_tokens, for writers
// that export a vocabulary (convert's GGUF metadata).
type AddedToken struct {
	ID      int
	Content string
	// Special is tokenizer.json's "special" flag (false for a BPE built
	// from GGUF metadata, which keeps no such flag).
	Special    bool
	Normalized bool
}

// Merges returns the merge rules in rank order, each as its two pieces
// joined by a space ("Ġ t"), as tokenizer.json and GGUF's
// tokenizer.ggml.merges spell them. A pair listed twice appears once, at
// the rank the tokenizer uses.
func (t *BPE) Merges() []string {
	type m struct {
		rank int32
		s    string
	}
	list := make([]m, 0, len(t.merges))
	for k, r := range t.merges {
		a, b := int(uint32(k>>32)), int(uint32(k))
		list = append(list, m{r.rank, t.Piece(a) + " " + t.Piece(b)})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].rank < list[j].rank })
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = x.s
	}
	return out
}

// AddedTokens returns the added tokens in id order.
func (t *BPE) AddedTokens() []AddedToken {
	seen := map[int]bool{}
	var out []AddedToken
	for _, set := range []*tokenSet{&t.added.raw, &t.added.norm} {
		if set.byFirst == nil {
			continue
		}
		for _, l := range set.byFirst {
			for _, a := range l {
				if seen[a.id] {
					continue
				}
				seen[a.id] = true
				out = append(out, AddedToken{ID: a.id, Content: t.Piece(a.id), Special: a.special, Normalized: a.normalized})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AddsBOS reports whether Encode with addSpecial puts the BOS id first
// (the tokenizer.json post-processor, or add_bos_token from GGUF).
func (t *BPE) AddsBOS() bool { return len(t.prefix) > 0 && t.bos >= 0 && t.prefix[0] == t.bos }

// AddsEOS reports whether Encode with addSpecial puts the EOS id last.
func (t *BPE) AddsEOS() bool {
	return len(t.suffix) > 0 && t.eos >= 0 && t.suffix[len(t.suffix)-1] == t.eos
}
