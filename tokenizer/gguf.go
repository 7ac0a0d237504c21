package tokenizer

import (
	"fmt"
	"math"
	"strings"
)

// GGUF token types (tokenizer.ggml.token_type).
const (
	ggufTokenNormal      = 1
	ggufTokenUnknown     = 2
	ggufTokenControl     = 3
	ggufTokenUserDefined = 4
	ggufTokenUnused      = 5
	ggufTokenByte        = 6
)

// SPM is a SentencePiece-style tokenizer built from GGUF metadata
// (tokenizer.ggml.model "llama"), encoding as llama.cpp's SPM tokenizer:
// control, user-defined and unknown tokens are matched literally, spaces
// become "▁", a "▁" is prefixed to text at the start or after a special
// token, then highest-score merges with byte fallback to <0xXX> tokens.
type SPM struct {
	v              spmVocab
	types          []int32
	specials       tokenSet
	bos, eos, unk  int
	addBOS, addEOS bool
	addSpacePrefix bool
	ends           []int // special end-of-generation ids besides EOS
}

// FromGGUF builds a tokenizer from GGUF metadata values given as plain Go
// values (string, []string, []float32, []int32, integers of any width,
// bool; []any is accepted for arrays). Model "llama" gives an *SPM, model
// "gpt2" a byte-level *BPE with the pre-tokenizer named by tokenizer.ggml.pre.
func FromGGUF(md map[string]any) (Tokenizer, error) {
	model, _ := md["tokenizer.ggml.model"].(string)
	tokens, err := ggufStrings(md, "tokenizer.ggml.tokens")
	if err != nil {
		return nil, err
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("tokenizer: gguf: tokenizer.ggml.tokens is missing or empty")
	}
	types, err := ggufInts(md, "tokenizer.ggml.token_type", len(tokens))
	if err != nil {
		return nil, err
	}
	bos := ggufInt(md, "tokenizer.ggml.bos_token_id", -1)
	eos := ggufInt(md, "tokenizer.ggml.eos_token_id", -1)
	unk := ggufInt(md, "tokenizer.ggml.unknown_token_id", -1)
	control := func(id int) bool { return types != nil && types[id] == ggufTokenControl }
	ends := specialEnds([]int{ggufInt(md, "tokenizer.ggml.eot_token_id", -1), ggufInt(md, "tokenizer.ggml.eom_token_id", -1)},
		tokens, control)
	for _, p := range []*int{&bos, &eos, &unk} {
		if *p >= len(tokens) || *p < 0 {
			*p = -1
		}
	}
	switch model {
	case "llama":
		scores, err := ggufFloats(md, "tokenizer.ggml.scores", len(tokens))
		if err != nil {
			return nil, err
		}
		t := &SPM{v: newSPMVocab(tokens, scores, true), types: types, bos: bos, eos: eos, unk: unk,
			addBOS:         ggufBool(md, "tokenizer.ggml.add_bos_token", true),
			addEOS:         ggufBool(md, "tokenizer.ggml.add_eos_token", false),
			addSpacePrefix: ggufBool(md, "tokenizer.ggml.add_space_prefix", true)}
		for i, p := range tokens {
			if types != nil && isGGUFSpecial(types[i]) {
				t.specials.add(&addedToken{id: i, content: p}, p)
			}
		}
		t.specials.finish()
		t.ends = ends
		return t, nil
	case "gpt2":
		t, err := bpeFromGGUF(md, tokens, types, bos, eos)
		if err != nil {
			return nil, err
		}
		t.ends = ends
		return t, nil
	case "":
		return nil, fmt.Errorf("tokenizer: gguf: tokenizer.ggml.model is missing")
	}
	return nil, fmt.Errorf("tokenizer: gguf: tokenizer.ggml.model %q is not supported (llama or gpt2)", model)
}

func isGGUFSpecial(ty int32) bool {
	return ty == ggufTokenControl || ty == ggufTokenUserDefined || ty == ggufTokenUnknown
}

// ggufPrePatterns maps tokenizer.ggml.pre to the pre-tokenizer pattern.
func ggufPrePattern(pre string) (pattern string, ignoreMerges bool, err error) {
	switch pre {
	case "", "default", "gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "roberta-bpe", "olmo", "jais":
		return PatternGPT2, false, nil
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral":
		return PatternLlama3, true, nil
	case "qwen2", "deepseek-r1-qwen", "megrez":
		return PatternQwen2, false, nil
	}
	return "", false, fmt.Errorf("tokenizer: gguf: tokenizer.ggml.pre %q is not supported", pre)
}

func bpeFromGGUF(md map[string]any, tokens []string, types []int32, bos, eos int) (*BPE, error) {
	pre, _ := md["tokenizer.ggml.pre"].(string)
	pattern, ignore, err := ggufPrePattern(pre)
	if err != nil {
		return nil, err
	}
	merges, err := ggufStrings(md, "tokenizer.ggml.merges")
	if err != nil {
		return nil, err
	}
	t := &BPE{vocab: make(map[string]int, len(tokens)), pieces: tokens,
		unkID: -1, bos: bos, eos: eos, ignoreMerges: ignore}
	for i, p := range tokens {
		t.vocab[p] = i
	}
	for b := range t.byteIDs {
		t.byteIDs[b] = -1
	}
	t.merges = make(map[uint64]mergeRule, len(merges))
	for rank, m := range merges {
		a, b, ok := strings.Cut(m, " ")
		if !ok {
			return nil, fmt.Errorf("tokenizer: gguf: merge %d %q is not two space-separated tokens", rank, m)
		}
		// llama.cpp ignores merges it cannot use; so do we.
		_ = t.addMerge(rank, a, b)
	}
	if pattern == PatternGPT2 {
		t.preTok = []preTokenizer{byteLevelPre(false, true)}
	} else {
		m, err := newPatternMatcher(pattern)
		if err != nil {
			return nil, err
		}
		t.preTok = []preTokenizer{splitPre(m, splitIsolated, false), byteLevelPre(false, false)}
	}
	t.added.byContent = make(map[string]int)
	for i, p := range tokens {
		if types != nil && isGGUFSpecial(types[i]) {
			t.added.raw.add(&addedToken{id: i, content: p}, p)
			t.added.byContent[p] = i
		}
	}
	t.added.raw.finish()
	if ggufBool(md, "tokenizer.ggml.add_bos_token", false) && bos >= 0 {
		t.prefix = []int{bos}
	}
	if ggufBool(md, "tokenizer.ggml.add_eos_token", false) && eos >= 0 {
		t.suffix = []int{eos}
	}
	t.decoders = []decoder{byteLevelDecoder}
	return t, nil
}

// VocabSize is the number of tokens.
func (t *SPM) VocabSize() int { return len(t.v.pieces) }

// Piece is the vocabulary entry of id, with "▁" for space ("" when out of range).
func (t *SPM) Piece(id int) string {
	if id < 0 || id >= len(t.v.pieces) {
		return ""
	}
	return t.v.pieces[id]
}

// BOS is the begin-of-sequence id, -1 when absent.
func (t *SPM) BOS() int { return t.bos }

// EOS is the end-of-sequence id, -1 when absent.
func (t *SPM) EOS() int { return t.eos }

// SetSpecial overrides the BOS and EOS ids (-1 for none).
func (t *SPM) SetSpecial(bos, eos int) { t.bos, t.eos = bos, eos }

// EndTokens lists EOS and every control token that ends a generation (see
// the package function EndTokens).
func (t *SPM) EndTokens() []int { return withEOS(t.eos, t.ends) }

// utf8LenByLead is llama.cpp's character length from a lead byte.
func utf8LenByLead(c byte) int {
	return [16]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}[c>>4]
}

// Encode tokenizes text as llama.cpp's SPM tokenizer (see SPM).
func (t *SPM) Encode(text string, addSpecial bool) []int {
	var out []int
	if addSpecial && t.addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	var av addedVocab
	av.raw = t.specials
	prevSpecial := true
	for _, seg := range av.split(text, false) {
		if seg.id >= 0 {
			out = append(out, seg.id)
			prevSpecial = true
			continue
		}
		s := seg.text
		if t.addSpacePrefix && prevSpecial {
			s = " " + s
		}
		prevSpecial = false
		s = strings.ReplaceAll(s, " ", "▁")
		syms := make([]spmSym, 0, len(s))
		for i := 0; i < len(s); {
			n := min(utf8LenByLead(s[i]), len(s)-i)
			c := s[i : i+n]
			id, ok := t.v.lookup[c]
			if !ok {
				id = -1
			}
			syms = append(syms, spmSym{text: c, id: id})
			i += n
		}
		for _, sym := range t.v.spmMerge(syms, float32(math.Inf(-1))) {
			if sym.id >= 0 {
				out = append(out, sym.id)
				continue
			}
			for k := 0; k < len(sym.text); k++ {
				if id := t.v.byteIDs[sym.text[k]]; id >= 0 {
					out = append(out, id)
				} else if t.unk >= 0 {
					out = append(out, t.unk)
				}
			}
		}
	}
	if addSpecial && t.addEOS && t.eos >= 0 {
		out = append(out, t.eos)
	}
	return out
}

// Decode renders ids: "▁" becomes a space, byte tokens become raw bytes,
// special tokens render as their text, and the space prefix of the first
// token is dropped (as llama.cpp and Hugging Face do). The result is the raw
// bytes, which may be invalid UTF-8 if ids split a character.
func (t *SPM) Decode(ids []int) string {
	var b strings.Builder
	for i, id := range ids {
		if id < 0 || id >= len(t.v.pieces) {
			continue
		}
		p := t.v.pieces[id]
		ty := int32(ggufTokenNormal)
		if t.types != nil {
			ty = t.types[id]
		}
		if ty == ggufTokenByte || t.types == nil {
			if c, ok := parseByteToken(p); ok {
				b.WriteByte(c)
				continue
			}
		}
		if ty == ggufTokenNormal || ty == ggufTokenUnused {
			p = strings.ReplaceAll(p, "▁", " ")
			if i == 0 && t.addSpacePrefix {
				p = strings.TrimPrefix(p, " ")
			}
		}
		b.WriteString(p)
	}
	return b.String()
}

// --- GGUF metadata value helpers ---

func ggufToInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return -1, true
		}
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	case float32:
		if float64(x) == math.Trunc(float64(x)) && math.Abs(float64(x)) < 1<<24 {
			return int64(x), true
		}
	}
	return 0, false
}

func ggufInt(md map[string]any, key string, def int) int {
	v, ok := md[key]
	if !ok {
		return def
	}
	n, ok := ggufToInt(v)
	if !ok || n > math.MaxInt32 || n < math.MinInt32 {
		return def
	}
	return int(n)
}

func ggufBool(md map[string]any, key string, def bool) bool {
	if b, ok := md[key].(bool); ok {
		return b
	}
	return def
}

func ggufStrings(md map[string]any, key string) ([]string, error) {
	switch x := md[key].(type) {
	case nil:
		return nil, nil
	case []string:
		return x, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("tokenizer: gguf: %s[%d] is %T, not a string", key, i, e)
			}
			out[i] = s
		}
		return out, nil
	default:
		return nil, fmt.Errorf("tokenizer: gguf: %s is %T, not a string array", key, x)
	}
}

func ggufFloats(md map[string]any, key string, n int) ([]float32, error) {
	var out []float32
	switch x := md[key].(type) {
	case nil:
		return make([]float32, n), nil // llama.cpp: missing scores are 0
	case []float32:
		out = x
	case []float64:
		out = make([]float32, len(x))
		for i, f := range x {
			out[i] = float32(f)
		}
	case []any:
		out = make([]float32, len(x))
		for i, e := range x {
			switch f := e.(type) {
			case float32:
				out[i] = f
			case float64:
				out[i] = float32(f)
			default:
				return nil, fmt.Errorf("tokenizer: gguf: %s[%d] is %T, not a float", key, i, e)
			}
		}
	default:
		return nil, fmt.Errorf("tokenizer: gguf: %s is %T, not a float array", key, x)
	}
	if len(out) != n {
		return nil, fmt.Errorf("tokenizer: gguf: %s has %d entries for %d tokens", key, len(out), n)
	}
	return out, nil
}

func ggufInts(md map[string]any, key string, n int) ([]int32, error) {
	v, present := md[key]
	if !present || v == nil {
		return nil, nil
	}
	var out []int32
	switch x := v.(type) {
	case []int32:
		out = x
	case []any:
		out = make([]int32, len(x))
		for i, e := range x {
			k, ok := ggufToInt(e)
			if !ok {
				return nil, fmt.Errorf("tokenizer: gguf: %s[%d] is %T, not an integer", key, i, e)
			}
			out[i] = int32(k)
		}
	default:
		// Any other integer slice type.
		var ok bool
		if out, ok = intSlice(v); !ok {
			return nil, fmt.Errorf("tokenizer: gguf: %s is %T, not an integer array", key, v)
		}
	}
	if len(out) != n {
		return nil, fmt.Errorf("tokenizer: gguf: %s has %d entries for %d tokens", key, len(out), n)
	}
	return out, nil
}

func intSlice(v any) ([]int32, bool) {
	conv := func(n int, at func(int) int64) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(at(i))
		}
		return out
	}
	switch x := v.(type) {
	case []int:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true
	case []int64:
		return conv(len(x), func(i int) int64 { return x[i] }), true
	case []uint32:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true
	case []int8:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true
	case []uint8:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true
	case []int16:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true
	case []uint16:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true
	case []uint64:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true
	}
	return nil, false
}
