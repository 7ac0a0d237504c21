package convert

import (
	"fmt"
	"slices"
	"strings"

	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/tokenizer"
)

// GGUF token types (tokenizer.ggml.token_type), llama.cpp's llama_token_type.
const (
	tokenNormal      int32 = 1
	tokenUnknown     int32 = 2
	tokenControl     int32 = 3
	tokenUserDefined int32 = 4
	tokenUnused      int32 = 5
	tokenByte        int32 = 6
)

// vocabulary returns the tokenizer.* key/values for ck's tokenizer.
//
// A GGUF source's own tokenizer.* keys are copied unchanged (when its
// tokenizer is the one ck holds). A byte-level BPE from tokenizer.json
// becomes tokenizer.ggml.model "gpt2" as convert_hf_to_gguf.py's
// get_vocab_base writes it: tokens by id (ids the tokenizer lacks up to the
// model's vocab_size become "[PAD<id>]", type unused), token_type 1 normal,
// 3 control for special added tokens and "<|...|>" ones, 4 user-defined for
// other added tokens, the merges in rank order, bos/eos ids and
// add_bos_token. tokenizer.ggml.pre names the pre-tokenizer; as llama.cpp's
// converter fingerprints the tokenizer (its chkhsh), terse encodes a probe
// text with each pre-tokenizer it knows ("gpt-2", "llama-bpe", "qwen2")
// and keeps the one whose ids equal the source tokenizer's, so the written
// vocabulary provably tokenizes as the source does.
//
// A llama2.c tokenizer.bin becomes tokenizer.ggml.model "llama" as
// llama.cpp's llama2.c converter writes it: ids 0, 1, 2 named <unk>, <s>,
// </s> (types unknown, control, control), empty pieces control, <0xXX>
// pieces byte, spaces written as "▁", the file's scores, and unknown, bos
// and eos ids 0, 1, 2.
//
// add_bos_token is opt.AddBOS, else tokenizer_config.json's add_bos_token,
// else false when its bos_token is null, else true when there is a BOS id
// (llama.cpp's own pdtext file sets it; the model was trained with BOS in
// front of each document). add_eos_token is written only when true.
func vocabulary(ck *load.Checkpoint, src *source, opt Options) ([]gguf.KV, error) {
	if ck.Tokenizer == nil {
		return nil, fmt.Errorf("checkpoint has no tokenizer")
	}
	if kv := copiedVocab(ck.Tokenizer, src); kv != nil {
		return kv, nil
	}
	switch t := ck.Tokenizer.(type) {
	case *tokenizer.BPE:
		return bpeVocab(t, ck.Model.Config.VocabSize, src, opt)
	case *tokenizer.Llama2c:
		return llama2cVocab(t, ck.Model.Config.VocabSize)
	}
	return nil, fmt.Errorf("tokenizer %T has no GGUF conversion", ck.Tokenizer)
}

// copiedVocab returns a GGUF source's tokenizer.* keys when its tokens are
// the tokenizer's, else nil.
func copiedVocab(tok tokenizer.Tokenizer, src *source) []gguf.KV {
	var out []gguf.KV
	var tokens []string
	for _, kv := range src.ggufKVs {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			out = append(out, kv)
		}
		if kv.Key == "tokenizer.ggml.tokens" {
			tokens, _ = kv.Value.([]string)
		}
	}
	if len(tokens) != tok.VocabSize() {
		return nil
	}
	for i, p := range tokens {
		if tok.Piece(i) != p {
			return nil
		}
	}
	return out
}

func bpeVocab(t *tokenizer.BPE, vocabSize int, src *source, opt Options) ([]gguf.KV, error) {
	n := max(vocabSize, t.VocabSize())
	tokens := make([]string, n)
	types := make([]int32, n)
	for i := range tokens {
		tokens[i], types[i] = t.Piece(i), tokenNormal
		if tokens[i] == "" {
			tokens[i], types[i] = fmt.Sprintf("[PAD%d]", i), tokenUnused
		}
	}
	for _, a := range t.AddedTokens() {
		if a.ID < 0 || a.ID >= n {
			continue
		}
		if a.Special || looksSpecial(a.Content) {
			types[a.ID] = tokenControl
		} else {
			types[a.ID] = tokenUserDefined
		}
	}
	merges := t.Merges()
	bos, eos := t.BOS(), t.EOS()
	addBOS := bos >= 0 && !src.bosNull
	if src.addBOS != nil {
		addBOS = *src.addBOS
	}
	if opt.AddBOS != nil {
		addBOS = *opt.AddBOS
	}
	addEOS := src.addEOS != nil && *src.addEOS

	kv := func(pre string) []gguf.KV {
		out := []gguf.KV{
			{Key: "tokenizer.ggml.model", Value: "gpt2"},
			{Key: "tokenizer.ggml.pre", Value: pre},
			{Key: "tokenizer.ggml.tokens", Value: tokens},
			{Key: "tokenizer.ggml.token_type", Value: types},
			{Key: "tokenizer.ggml.merges", Value: merges},
		}
		if bos >= 0 {
			out = append(out, gguf.KV{Key: "tokenizer.ggml.bos_token_id", Value: uint32(bos)})
		}
		if eos >= 0 {
			out = append(out, gguf.KV{Key: "tokenizer.ggml.eos_token_id", Value: uint32(eos)})
		}
		out = append(out, gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: addBOS})
		if addEOS {
			out = append(out, gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: true})
		}
		return out
	}
	want := t.Encode(probeText, false)
	var tried []string
	for _, pre := range []string{"gpt-2", "llama-bpe", "qwen2"} {
		out := kv(pre)
		md := make(map[string]any, len(out))
		for _, x := range out {
			md[x.Key] = x.Value
		}
		g, err := tokenizer.FromGGUF(md)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", pre, err))
			continue
		}
		if slices.Equal(g.Encode(probeText, false), want) {
			return out, nil
		}
		tried = append(tried, pre)
	}
	return nil, fmt.Errorf("tokenizer: no GGUF pre-tokenizer reproduces this tokenizer.json (tried %s); its normalizer or pre-tokenizer has no llama.cpp equivalent terse knows",
		strings.Join(tried, ", "))
}

// looksSpecial is convert_hf_to_gguf.py's does_token_look_special for the
// tokens it treats as control although tokenizer.json does not mark them.
func looksSpecial(s string) bool {
	switch s {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return (strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>") && len(s) > 4) ||
		(strings.HasPrefix(s, "<｜") && strings.HasSuffix(s, "｜>"))
}

func llama2cVocab(t *tokenizer.Llama2c, vocabSize int) ([]gguf.KV, error) {
	n := t.VocabSize()
	if n != vocabSize {
		return nil, fmt.Errorf("llama2.c tokenizer has %d pieces but the model %d", n, vocabSize)
	}
	tokens := make([]string, n)
	scores := make([]float32, n)
	types := make([]int32, n)
	for i := range tokens {
		p, ty := t.Piece(i), tokenNormal
		switch {
		case i == 0:
			p, ty = "<unk>", tokenUnknown
		case i == 1:
			p, ty = "<s>", tokenControl
		case i == 2:
			p, ty = "</s>", tokenControl
		case p == "":
			ty = tokenControl
		case isByteToken(p):
			ty = tokenByte
		}
		tokens[i], types[i], scores[i] = strings.ReplaceAll(p, " ", "▁"), ty, t.Score(i)
	}
	return []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: "llama"},
		{Key: "tokenizer.ggml.tokens", Value: tokens},
		{Key: "tokenizer.ggml.scores", Value: scores},
		{Key: "tokenizer.ggml.token_type", Value: types},
		{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
		{Key: "tokenizer.ggml.add_bos_token", Value: true},
	}, nil
}

// isByteToken matches what llama.cpp's sscanf("<0x%02hhX>") accepts: "<0x"
// and a hex digit.
func isByteToken(p string) bool {
	rest, ok := strings.CutPrefix(p, "<0x")
	if !ok || rest == "" {
		return false
	}
	c := rest[0]
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// probeText exercises what tells pre-tokenizers apart: runs of digits,
// contractions in both cases, whitespace runs and newlines, punctuation,
// accented, CJK and emoji text, and a special token (modelled on
// llama.cpp's convert_hf_to_gguf_update.py check text).
const probeText = "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ 🦙🦙 " +
	"3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 " +
	"ខ្ញុំ Ελληνικά нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? " +
	"I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL " +
	"Hello, y'all! How are you 😁 ?我想在apple工作1314151天～ ------======= <|endoftext|> café  naïve\r\nend"
