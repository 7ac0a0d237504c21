package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// LoadHF reads a Hugging Face tokenizer.json whose model is BPE (byte-level
// as in GPT-2, Llama-3 and Qwen2, or SentencePiece-style with Metaspace and
// byte fallback as in Llama-2 and Mistral).
func LoadHF(path string) (*BPE, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return ParseHF(path, data)
}

// ParseHF parses the contents of a tokenizer.json; name is used in errors.
func ParseHF(name string, data []byte) (t *BPE, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("tokenizer: %s: %w", name, err)
		}
	}()
	var f struct {
		AddedTokens []struct {
			ID         int    `json:"id"`
			Content    string `json:"content"`
			SingleWord bool   `json:"single_word"`
			Lstrip     bool   `json:"lstrip"`
			Rstrip     bool   `json:"rstrip"`
			Normalized bool   `json:"normalized"`
			Special    bool   `json:"special"`
		} `json:"added_tokens"`
		Normalizer    json.RawMessage `json:"normalizer"`
		PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
		PostProcessor json.RawMessage `json:"post_processor"`
		Decoder       json.RawMessage `json:"decoder"`
		Model         *struct {
			Type          string          `json:"type"`
			Vocab         json.RawMessage `json:"vocab"`
			Merges        json.RawMessage `json:"merges"`
			UnkToken      *string         `json:"unk_token"`
			FuseUnk       bool            `json:"fuse_unk"`
			ByteFallback  bool            `json:"byte_fallback"`
			IgnoreMerges  bool            `json:"ignore_merges"`
			ContPrefix    *string         `json:"continuing_subword_prefix"`
			EndWordSuffix *string         `json:"end_of_word_suffix"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a valid tokenizer.json: %v", err)
	}
	m := f.Model
	if m == nil {
		return nil, fmt.Errorf("no model section")
	}
	if m.Type == "" && len(m.Merges) > 0 {
		m.Type = "BPE"
	}
	if m.Type != "BPE" {
		return nil, fmt.Errorf("model type %q is not supported (only BPE)", m.Type)
	}
	var vocab map[string]int
	if err := json.Unmarshal(m.Vocab, &vocab); err != nil || vocab == nil {
		return nil, fmt.Errorf("model.vocab is not a map of token to id")
	}
	t = &BPE{vocab: vocab, unkID: -1, bos: -1, eos: -1,
		fuseUnk: m.FuseUnk, byteFallback: m.ByteFallback, ignoreMerges: m.IgnoreMerges}
	if m.ContPrefix != nil {
		t.contPrefix = *m.ContPrefix
	}
	if m.EndWordSuffix != nil {
		t.eowSuffix = *m.EndWordSuffix
	}

	// Ids: model vocabulary plus added tokens, kept dense.
	maxID := -1
	for tok, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("model.vocab: token %q has negative id %d", tok, id)
		}
		maxID = max(maxID, id)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("added token %q has negative id %d", a.Content, a.ID)
		}
		maxID = max(maxID, a.ID)
	}
	if n := len(vocab) + len(f.AddedTokens); maxID >= 2*n+1024 {
		return nil, fmt.Errorf("token ids are too sparse (largest %d for %d tokens)", maxID, n)
	}
	t.pieces = make([]string, maxID+1)
	for tok, id := range vocab {
		t.pieces[id] = tok
	}
	if m.UnkToken != nil {
		id, ok := vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("unk_token %q is not in the vocabulary", *m.UnkToken)
		}
		t.unkID = id
	}
	for b := 0; b < 256; b++ {
		t.byteIDs[b] = -1
		if id, ok := vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			t.byteIDs[b] = id
		}
	}
	if err := t.parseMerges(m.Merges); err != nil {
		return nil, err
	}

	if t.normalizers, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, fmt.Errorf("normalizer: %v", err)
	}
	if t.preTok, err = parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %v", err)
	}

	// Added tokens.
	t.added.byContent = make(map[string]int)
	for _, a := range f.AddedTokens {
		tok := &addedToken{id: a.ID, content: a.Content, singleWord: a.SingleWord,
			lstrip: a.Lstrip, rstrip: a.Rstrip, normalized: a.Normalized, special: a.Special}
		t.pieces[a.ID] = a.Content
		t.added.byContent[a.Content] = a.ID
		if a.Normalized {
			c := a.Content
			for _, n := range t.normalizers {
				c = n(c)
			}
			t.added.norm.add(tok, c)
		} else {
			t.added.raw.add(tok, a.Content)
		}
	}
	t.added.raw.finish()
	t.added.norm.finish()

	bos, eos, err := t.parsePostProcessor(f.PostProcessor)
	if err != nil {
		return nil, fmt.Errorf("post_processor: %v", err)
	}
	if isNull(f.Decoder) {
		t.noDecoder = true
	} else if t.decoders, err = parseDecoder(f.Decoder); err != nil {
		return nil, fmt.Errorf("decoder: %v", err)
	}

	// BOS/EOS: from the post-processor, else from well-known names.
	t.bos, t.eos = bos, eos
	if t.bos < 0 {
		t.bos = t.firstKnown("<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "<|endoftext|>")
	}
	if t.eos < 0 {
		t.eos = t.firstKnown("<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>", "<|im_end|>")
	}
	special := make(map[int]bool)
	for _, a := range f.AddedTokens {
		if a.Special {
			special[a.ID] = true
		}
	}
	t.ends = specialEnds(nil, t.pieces, func(id int) bool { return special[id] })
	return t, nil
}

func (t *BPE) firstKnown(names ...string) int {
	for _, n := range names {
		if id, ok := t.TokenID(n); ok {
			return id
		}
	}
	return -1
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// parseMerges reads merges as ["a b", ...] or [["a", "b"], ...].
func (t *BPE) parseMerges(raw json.RawMessage) error {
	t.merges = make(map[uint64]mergeRule)
	if isNull(raw) {
		return nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("model.merges is not a list")
	}
	for rank, item := range list {
		var a, b string
		var s string
		var pair []string
		if err := json.Unmarshal(item, &s); err == nil {
			var ok bool
			a, b, ok = strings.Cut(s, " ")
			if !ok {
				return fmt.Errorf("merge %d %q is not two space-separated tokens", rank, s)
			}
		} else if err := json.Unmarshal(item, &pair); err == nil && len(pair) == 2 {
			a, b = pair[0], pair[1]
		} else {
			return fmt.Errorf("merge %d is neither \"a b\" nor [a, b]", rank)
		}
		if err := t.addMerge(rank, a, b); err != nil {
			return err
		}
	}
	return nil
}

func (t *BPE) addMerge(rank int, a, b string) error {
	ia, ok := t.vocab[a]
	if !ok {
		return fmt.Errorf("merge %d (%q %q): %q is not in the vocabulary", rank, a, b, a)
	}
	ib, ok := t.vocab[b]
	if !ok {
		return fmt.Errorf("merge %d (%q %q): %q is not in the vocabulary", rank, a, b, b)
	}
	joined := a + strings.TrimPrefix(b, t.contPrefix)
	in, ok := t.vocab[joined]
	if !ok {
		return fmt.Errorf("merge %d (%q %q): result %q is not in the vocabulary", rank, a, b, joined)
	}
	t.merges[pairKey(ia, ib)] = mergeRule{int32(rank), int32(in)}
	return nil
}

// typed is the "type" field every component carries.
type typed struct {
	Type string `json:"type"`
}

// patternJSON is {"String": "..."} or {"Regex": "..."}.
type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

func (p patternJSON) matcher() (matcher, error) {
	switch {
	case p.String != nil:
		return literalMatcher{*p.String}, nil
	case p.Regex != nil:
		return newPatternMatcher(*p.Regex)
	}
	return nil, fmt.Errorf("pattern has neither String nor Regex")
}

func nfNormalizer(f norm.Form) normalizer {
	if f != norm.NFC {
		return f.String
	}
	return func(s string) string {
		// Text below U+0300 is unchanged by NFC (lead bytes under 0xCC).
		for i := 0; i < len(s); i++ {
			if s[i] >= 0xCC {
				return f.String(s)
			}
		}
		return s
	}
}

func parseNormalizer(raw json.RawMessage) ([]normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	var ty typed
	if err := json.Unmarshal(raw, &ty); err != nil {
		return nil, err
	}
	switch ty.Type {
	case "Sequence":
		var s struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		var out []normalizer
		for _, r := range s.Normalizers {
			n, err := parseNormalizer(r)
			if err != nil {
				return nil, err
			}
			out = append(out, n...)
		}
		return out, nil
	case "Prepend":
		var s struct {
			Prepend string `json:"prepend"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []normalizer{prependNormalizer(s.Prepend)}, nil
	case "Replace":
		var s struct {
			Pattern patternJSON `json:"pattern"`
			Content string      `json:"content"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		m, err := s.Pattern.matcher()
		if err != nil {
			return nil, err
		}
		return []normalizer{replaceNormalizer(m, s.Content)}, nil
	case "NFC":
		return []normalizer{nfNormalizer(norm.NFC)}, nil
	case "NFD":
		return []normalizer{nfNormalizer(norm.NFD)}, nil
	case "NFKC":
		return []normalizer{nfNormalizer(norm.NFKC)}, nil
	case "NFKD":
		return []normalizer{nfNormalizer(norm.NFKD)}, nil
	case "Lowercase":
		return []normalizer{strings.ToLower}, nil
	case "Strip":
		var s struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []normalizer{stripNormalizer(s.Left, s.Right)}, nil
	}
	return nil, fmt.Errorf("normalizer type %q is not supported", ty.Type)
}

func parseBehavior(s string) (splitBehavior, error) {
	switch s {
	case "Isolated", "":
		return splitIsolated, nil
	case "Removed":
		return splitRemoved, nil
	case "MergedWithPrevious":
		return splitMergedWithPrevious, nil
	case "MergedWithNext":
		return splitMergedWithNext, nil
	case "Contiguous":
		return splitContiguous, nil
	}
	return 0, fmt.Errorf("split behavior %q is not supported", s)
}

// metaspaceConfig reads replacement and prepend scheme from a Metaspace
// pre-tokenizer or decoder (new prepend_scheme or old add_prefix_space).
func metaspaceConfig(raw json.RawMessage) (rep string, scheme prependScheme, split bool, err error) {
	var s struct {
		Replacement    string  `json:"replacement"`
		PrependScheme  *string `json:"prepend_scheme"`
		AddPrefixSpace *bool   `json:"add_prefix_space"`
		Split          *bool   `json:"split"`
	}
	if err = json.Unmarshal(raw, &s); err != nil {
		return
	}
	rep = s.Replacement
	if utf8.RuneCountInString(rep) != 1 {
		return "", 0, false, fmt.Errorf("metaspace replacement %q is not one character", rep)
	}
	scheme = prependAlways
	switch {
	case s.PrependScheme != nil:
		switch *s.PrependScheme {
		case "always":
			scheme = prependAlways
		case "first":
			scheme = prependFirst
		case "never":
			scheme = prependNever
		default:
			return "", 0, false, fmt.Errorf("metaspace prepend_scheme %q is not supported", *s.PrependScheme)
		}
	case s.AddPrefixSpace != nil && !*s.AddPrefixSpace:
		scheme = prependNever
	}
	split = s.Split == nil || *s.Split
	return
}

func parsePreTokenizer(raw json.RawMessage) ([]preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	var ty typed
	if err := json.Unmarshal(raw, &ty); err != nil {
		return nil, err
	}
	switch ty.Type {
	case "Sequence":
		var s struct {
			Pretokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		var out []preTokenizer
		for _, r := range s.Pretokenizers {
			p, err := parsePreTokenizer(r)
			if err != nil {
				return nil, err
			}
			out = append(out, p...)
		}
		return out, nil
	case "ByteLevel":
		var s struct {
			AddPrefixSpace bool  `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []preTokenizer{byteLevelPre(s.AddPrefixSpace, s.UseRegex == nil || *s.UseRegex)}, nil
	case "Split":
		var s struct {
			Pattern  patternJSON `json:"pattern"`
			Behavior string      `json:"behavior"`
			Invert   bool        `json:"invert"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		m, err := s.Pattern.matcher()
		if err != nil {
			return nil, err
		}
		b, err := parseBehavior(s.Behavior)
		if err != nil {
			return nil, err
		}
		return []preTokenizer{splitPre(m, b, s.Invert)}, nil
	case "Metaspace":
		rep, scheme, split, err := metaspaceConfig(raw)
		if err != nil {
			return nil, err
		}
		return []preTokenizer{metaspacePre(rep, scheme, split)}, nil
	case "Digits":
		var s struct {
			Individual bool `json:"individual_digits"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		var m matcher = scanFunc(func(s string, i int) int {
			r, n := runeAt(s, i)
			if r < 0 || !isNumber(r) {
				return -1
			}
			return i + n
		})
		b := splitIsolated
		if !s.Individual {
			b = splitContiguous
		}
		return []preTokenizer{splitPre(m, b, false)}, nil
	case "WhitespaceSplit":
		m := scanFunc(func(s string, i int) int {
			r, _ := runeAt(s, i)
			if r < 0 || !isSpaceRune(r) {
				return -1
			}
			return spanWhile(s, i, isSpaceRune)
		})
		return []preTokenizer{splitPre(m, splitRemoved, false)}, nil
	}
	return nil, fmt.Errorf("pre-tokenizer type %q is not supported", ty.Type)
}

// parsePostProcessor sets the ids added around a sequence and reports the
// BOS and EOS it implies (-1 when none).
func (t *BPE) parsePostProcessor(raw json.RawMessage) (bos, eos int, err error) {
	bos, eos = -1, -1
	if isNull(raw) {
		return
	}
	var ty typed
	if err = json.Unmarshal(raw, &ty); err != nil {
		return
	}
	switch ty.Type {
	case "ByteLevel":
		return
	case "Sequence":
		var s struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err = json.Unmarshal(raw, &s); err != nil {
			return
		}
		for _, r := range s.Processors {
			b, e, err2 := t.parsePostProcessor(r)
			if err2 != nil {
				return -1, -1, err2
			}
			if b >= 0 {
				bos = b
			}
			if e >= 0 {
				eos = e
			}
		}
		return
	case "RobertaProcessing", "BertProcessing":
		var s struct {
			Sep []json.RawMessage `json:"sep"`
			Cls []json.RawMessage `json:"cls"`
		}
		if err = json.Unmarshal(raw, &s); err != nil {
			return
		}
		var sep, cls int
		if len(s.Sep) != 2 || len(s.Cls) != 2 ||
			json.Unmarshal(s.Sep[1], &sep) != nil || json.Unmarshal(s.Cls[1], &cls) != nil {
			return -1, -1, fmt.Errorf("%s: sep and cls must be [token, id]", ty.Type)
		}
		if err = t.checkID(cls); err != nil {
			return
		}
		if err = t.checkID(sep); err != nil {
			return
		}
		t.prefix, t.suffix = []int{cls}, []int{sep}
		return cls, sep, nil
	case "TemplateProcessing":
		var s struct {
			Single []struct {
				SpecialToken *struct {
					ID string `json:"id"`
				} `json:"SpecialToken"`
				Sequence *struct {
					ID string `json:"id"`
				} `json:"Sequence"`
			} `json:"single"`
			SpecialTokens map[string]struct {
				IDs []int `json:"ids"`
			} `json:"special_tokens"`
		}
		if err = json.Unmarshal(raw, &s); err != nil {
			return
		}
		seenSeq := false
		t.prefix, t.suffix = nil, nil
		for _, it := range s.Single {
			switch {
			case it.Sequence != nil:
				seenSeq = true
			case it.SpecialToken != nil:
				st, ok := s.SpecialTokens[it.SpecialToken.ID]
				if !ok {
					return -1, -1, fmt.Errorf("TemplateProcessing: special token %q has no ids", it.SpecialToken.ID)
				}
				for _, id := range st.IDs {
					if err = t.checkID(id); err != nil {
						return
					}
				}
				if seenSeq {
					t.suffix = append(t.suffix, st.IDs...)
				} else {
					t.prefix = append(t.prefix, st.IDs...)
				}
			}
		}
		if len(t.prefix) > 0 {
			bos = t.prefix[0]
		}
		if len(t.suffix) > 0 {
			eos = t.suffix[len(t.suffix)-1]
		}
		return
	}
	return -1, -1, fmt.Errorf("post-processor type %q is not supported", ty.Type)
}

func (t *BPE) checkID(id int) error {
	if id < 0 || id >= len(t.pieces) {
		return fmt.Errorf("token id %d is out of range", id)
	}
	return nil
}

func parseDecoder(raw json.RawMessage) ([]decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	var ty typed
	if err := json.Unmarshal(raw, &ty); err != nil {
		return nil, err
	}
	switch ty.Type {
	case "Sequence":
		var s struct {
			Decoders []json.RawMessage `json:"decoders"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		var out []decoder
		for _, r := range s.Decoders {
			d, err := parseDecoder(r)
			if err != nil {
				return nil, err
			}
			out = append(out, d...)
		}
		return out, nil
	case "ByteLevel":
		return []decoder{byteLevelDecoder}, nil
	case "ByteFallback":
		return []decoder{byteFallbackDecoder}, nil
	case "Fuse":
		return []decoder{fuseDecoder}, nil
	case "Replace":
		var s struct {
			Pattern patternJSON `json:"pattern"`
			Content string      `json:"content"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		m, err := s.Pattern.matcher()
		if err != nil {
			return nil, err
		}
		return []decoder{replaceDecoder(m, s.Content)}, nil
	case "Strip":
		var s struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		r, n := utf8.DecodeRuneInString(s.Content)
		if n == 0 || n != len(s.Content) {
			return nil, fmt.Errorf("strip content %q is not one character", s.Content)
		}
		return []decoder{stripDecoder(r, s.Start, s.Stop)}, nil
	case "Metaspace":
		rep, scheme, _, err := metaspaceConfig(raw)
		if err != nil {
			return nil, err
		}
		r, _ := utf8.DecodeRuneInString(rep)
		return []decoder{metaspaceDecoder(r, scheme)}, nil
	case "BPEDecoder":
		var s struct {
			Suffix string `json:"suffix"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []decoder{func(toks []string) []string {
			out := make([]string, len(toks))
			for i, t := range toks {
				rep := " "
				if i == len(toks)-1 {
					rep = ""
				}
				out[i] = strings.ReplaceAll(t, s.Suffix, rep)
			}
			return out
		}}, nil
	}
	return nil, fmt.Errorf("decoder type %q is not supported", ty.Type)
}
