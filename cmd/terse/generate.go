package main

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/terse-llm/terse/kv"
	"github.com/terse-llm/terse/model"
)

func runGenerate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("generate", stderr)
	mf := addModelFlags(fs)
	prompt := fs.String("prompt", "", "text to continue")
	n := fs.Int("n", 128, "number of tokens to generate")
	temp := fs.Float64("temp", 0, "sampling temperature (0: greedy)")
	topP := fs.Float64("top-p", 0.95, "nucleus sampling mass (with --temp > 0)")
	topK := fs.Int("top-k", 0, "sample only among the k most likely tokens (0: all)")
	seed := fs.Uint64("seed", 0, "random seed for sampling (0: from the clock)")
	ctx := fs.Int("ctx", 0, "context length (0: prompt + n, capped at the model's maximum)")
	ignoreEOS := fs.Bool("ignore-eos", false, "keep generating past the end-of-sequence token")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of streaming text")
	kvFlag := fs.String("kv", "f32", "KV cache: f32, f16, q8_0, q4_0, kivi[:kBvB][:gG][:rR], … (see package kv)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n < 0 {
		return usagef("-n must be at least 0")
	}
	kvSpec, err := kv.Parse(*kvFlag)
	if err != nil {
		return usageError{"--kv: " + err.Error()}
	}
	ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	tok, m := ck.Tokenizer, ck.Model
	ids := tok.Encode(*prompt, true)
	if len(ids) == 0 {
		if tok.BOS() < 0 {
			return usagef("empty prompt and the model has no BOS token to start from")
		}
		ids = []int{tok.BOS()}
	}
	promptLen := len(ids)
	size := *ctx
	if size <= 0 {
		size = promptLen + *n
		if m.Config.MaxSeqLen > 0 && size > m.Config.MaxSeqLen {
			size = m.Config.MaxSeqLen
		}
	}
	if promptLen >= size && *n > 0 {
		return fmt.Errorf("prompt of %d tokens leaves no room in a context of %d", promptLen, size)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	cache, err := kvSpec.New(&m.Config, size)
	if err != nil {
		return fmt.Errorf("--kv: %w", err)
	}
	st := m.NewStateWithCache(cache, min(promptLen, 512))
	sampler := model.NewSampler(*temp, *topK, *topP, *seed)
	logits := make([]float32, m.Config.VocabSize)
	start := time.Now()
	if err := st.Forward(ids, logits, false); err != nil {
		return err
	}
	prefill := time.Since(start)
	printed := 0
	emit := func() {
		if *jsonOut {
			return
		}
		text := tok.Decode(ids[promptLen:])
		// Hold back a partial UTF-8 sequence until it completes.
		end := len(text)
		for end > printed && !utf8.ValidString(text[printed:end]) {
			end--
		}
		if end > printed {
			io.WriteString(stdout, text[printed:end])
			printed = end
		}
	}
	if !*jsonOut {
		io.WriteString(stdout, *prompt)
	}
	genStart := time.Now()
	generated := 0
	for generated < *n && st.Pos() < size {
		next := sampler.Sample(logits)
		if next == tok.EOS() && !*ignoreEOS && tok.EOS() >= 0 {
			break
		}
		ids = append(ids, next)
		generated++
		emit()
		if generated == *n || st.Pos() >= size {
			break
		}
		if err := st.Forward(ids[len(ids)-1:], logits, false); err != nil {
			return err
		}
	}
	dur := time.Since(genStart)
	if *jsonOut {
		return writeCompactJSON(stdout, struct {
			IDs          []int   `json:"ids"`  // prompt ids first
			Text         string  `json:"text"` // the prompt and its continuation
			PromptTokens int     `json:"prompt_tokens"`
			Generated    int     `json:"generated"`
			PrefillTPS   float64 `json:"prefill_tps"`
			DecodeTPS    float64 `json:"decode_tps"`
		}{ids, tok.Decode(ids), promptLen, generated, rate(promptLen, prefill), rate(generated, dur)})
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stderr, "%s\nprompt %d tokens (%.1f tok/s), generated %d tokens (%.1f tok/s)\n",
		strings.Repeat("-", 40), promptLen, rate(promptLen, prefill), generated, rate(generated, dur))
	return nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
