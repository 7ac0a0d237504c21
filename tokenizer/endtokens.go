package tokenizer

import "slices"

// isEndName says whether text is that of a token that ends a generation
// in the model families terse knows (Llama-2 and -3, Mistral, Qwen, Phi,
// Gemma, GPT-2). A vocabulary entry with such a text ends generation only
// when the vocabulary marks it special (a control or added special token),
// so a plain word that happens to read "</s>" does not.
func isEndName(text string) bool {
	switch text {
	case "</s>", "<eos>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>",
		"<|im_end|>", "<|end|>", "<end_of_turn>", "<|return|>":
		return true
	}
	return false
}

// EndTokener is implemented by tokenizers that know every end-of-generation
// token of their vocabulary, not only EOS.
type EndTokener interface {
	// EndTokens lists the ids that end a generation, EOS first, ascending
	// after it.
	EndTokens() []int
}

// EndTokens lists the ids of t that end a generation: EOS, then every
// special token of the vocabulary whose text is a known end-of-generation
// marker (Llama-3's <|eot_id|> and <|end_of_text|>, ChatML's <|im_end|>,
// </s>, ...). It is empty when t has none.
func EndTokens(t Tokenizer) []int {
	if e, ok := t.(EndTokener); ok {
		return e.EndTokens()
	}
	if t.EOS() >= 0 {
		return []int{t.EOS()}
	}
	return nil
}

// specialEnds lists, ascending, the ids named by metadata (GGUF's eot and
// eom ids; out-of-range ones are ignored) and the special tokens among
// pieces whose text is an end marker.
func specialEnds(extra []int, pieces []string, special func(id int) bool) []int {
	var out []int
	add := func(id int) {
		if id >= 0 && id < len(pieces) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, id := range extra {
		add(id)
	}
	for id, p := range pieces {
		if isEndName(p) && special(id) {
			add(id)
		}
	}
	slices.Sort(out)
	return out
}

// withEOS puts eos (when ≥ 0) in front of ends, without repeating it.
func withEOS(eos int, ends []int) []int {
	out := make([]int, 0, len(ends)+1)
	if eos >= 0 {
		out = append(out, eos)
	}
	for _, id := range ends {
		if id != eos {
			out = append(out, id)
		}
	}
	return out
}
