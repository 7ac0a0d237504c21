package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/terse-llm/terse/kv"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tokenizer"
)

func runGenerate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("generate", stderr)
	mf := addModelFlags(fs)
	prompt := fs.String("prompt", "", "text to continue")
	n := fs.Int("n", 128, "number of tokens to generate (at most the context less the prompt)")
	temp := fs.Float64("temp", 0, "sampling temperature, ≥ 0 (0: greedy)")
	topP := fs.Float64("top-p", 0.95, "nucleus sampling mass in (0, 1] (with --temp > 0)")
	topK := fs.Int("top-k", 0, "sample only among the k most likely tokens (0: all)")
	seed := fs.Uint64("seed", 0, "random seed for sampling (0: a random one, reported on stderr and in --json)")
	ctx := fs.Int("ctx", 0, "context length (0: prompt + n, capped at the model's trained context)")
	allowLong := fs.Bool("allow-long-ctx", false, "allow a --ctx beyond the model's trained context")
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	var stops stopList
	fs.Var(&stops, "stop", `stop when the text reaches this string, which is not printed (repeatable; \n, \t and \\ read as newline, tab and backslash)`)
	ignoreEOS := fs.Bool("ignore-eos", false, "keep generating past the end-of-sequence and end-of-turn tokens")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of streaming text")
	kvFlag := fs.String("kv", "f32", "KV cache: f32, f16, q8_0, q4_0, kivi[:kBvB][:gG][:rR], … (see package kv)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *n < 0:
		return usagef("-n %d: must be at least 0", *n)
	case *temp < 0 || math.IsNaN(*temp) || math.IsInf(*temp, 0):
		return usagef("--temp %v: must be 0 (greedy) or positive", *temp)
	case !(*topP > 0 && *topP <= 1):
		return usagef("--top-p %v: must be in (0, 1]", *topP)
	case *topK < 0:
		return usagef("--top-k %d: must be 0 (all tokens) or a positive count", *topK)
	case *ctx < 0:
		return usagef("--ctx %d: must be 0 (prompt + n) or a positive length", *ctx)
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	if *seed == 0 {
		*seed = rand.Uint64() | 1
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
	trained := m.Config.MaxSeqLen
	size := *ctx
	if size > 0 {
		if err := checkTrainedCtx(ck.Path, size, trained, *allowLong); err != nil {
			return err
		}
	} else {
		size = promptLen + *n
		if trained > 0 && size > trained {
			size = trained
		}
	}
	if promptLen >= size && *n > 0 {
		return fmt.Errorf("prompt of %d tokens leaves no room in a context of %d", promptLen, size)
	}
	if promptLen+*n > size {
		fmt.Fprintf(stderr, "warning: -n %d with a prompt of %d tokens does not fit the context of %d: at most %d tokens will be generated\n",
			*n, promptLen, size, size-promptLen)
	}
	ends := tokenizer.EndTokens(tok)
	if *ignoreEOS {
		ends = nil
	}
	maxStop := 0
	for _, s := range stops {
		maxStop = max(maxStop, len(s))
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
	text := "" // the continuation so far, cut at a stop string
	reason := "length"
	// update decodes the continuation, cuts it at the first stop string and
	// prints what can no longer change: not a partial UTF-8 sequence, and
	// not a tail that could still grow into a stop string.
	// The continuation is decoded with the prompt before it, so that a
	// decoder's rules for a sequence's first piece (dropping its leading
	// space) apply to the prompt, not to the continuation.
	promptText := tok.Decode(ids[:promptLen])
	update := func() (stopped bool) {
		text = tok.Decode(ids)
		if strings.HasPrefix(text, promptText) {
			text = text[len(promptText):]
		} else {
			text = tok.Decode(ids[promptLen:])
		}
		if i := firstStop(text, stops, max(0, printed-maxStop)); i >= 0 {
			text, stopped = text[:i], true
		}
		if *jsonOut {
			return stopped
		}
		end := len(text)
		if !stopped {
			end -= stopPrefixLen(text[printed:], stops)
		}
		for end > printed && !utf8.ValidString(text[printed:end]) {
			end--
		}
		if end > printed {
			io.WriteString(stdout, text[printed:end])
			printed = end
		}
		return stopped
	}
	if !*jsonOut {
		io.WriteString(stdout, *prompt)
	}
	genStart := time.Now()
	generated := 0
	for generated < *n && st.Pos() < size {
		next := sampler.Sample(logits)
		if slices.Contains(ends, next) {
			reason = "eos"
			break
		}
		ids = append(ids, next)
		generated++
		if update() {
			reason = "stop"
			break
		}
		if generated == *n || st.Pos() >= size {
			break
		}
		if err := st.Forward(ids[len(ids)-1:], logits, false); err != nil {
			return err
		}
	}
	if reason == "length" && generated < *n {
		reason = "context"
	}
	if !*jsonOut && printed < len(text) {
		io.WriteString(stdout, text[printed:])
	}
	dur := time.Since(genStart)
	if *jsonOut {
		return writeCompactJSON(stdout, struct {
			IDs          []int   `json:"ids"`  // prompt ids first
			Text         string  `json:"text"` // the prompt and its continuation, cut before a stop string
			PromptTokens int     `json:"prompt_tokens"`
			Generated    int     `json:"generated"`
			StopReason   string  `json:"stop_reason"` // length, eos, stop or context
			Seed         uint64  `json:"seed"`
			PrefillTPS   float64 `json:"prefill_tps"`
			DecodeTPS    float64 `json:"decode_tps"`
		}{ids, promptText + text, promptLen, generated, reason, *seed, rate(promptLen, prefill), rate(generated, dur)})
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stderr, "%s\nprompt %d tokens (%.1f tok/s), generated %d tokens (%.1f tok/s), stopped by %s, seed %d\n",
		strings.Repeat("-", 40), promptLen, rate(promptLen, prefill), generated, rate(generated, dur), reason, *seed)
	return nil
}

// stopList collects repeated --stop flags.
type stopList []string

func (s *stopList) String() string { return strings.Join(*s, ", ") }

func (s *stopList) Set(v string) error {
	if v == "" {
		return errors.New("a stop string cannot be empty")
	}
	*s = append(*s, strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\t`, "\t").Replace(v))
	return nil
}

// firstStop is the earliest index at or after from where one of stops
// begins in text, or -1.
func firstStop(text string, stops []string, from int) int {
	best := -1
	for _, s := range stops {
		if i := strings.Index(text[from:], s); i >= 0 && (best < 0 || from+i < best) {
			best = from + i
		}
	}
	return best
}

// stopPrefixLen is the length of the longest tail of text that is a proper
// prefix of a stop string (text that may yet become one).
func stopPrefixLen(text string, stops []string) int {
	n := 0
	for _, s := range stops {
		for k := min(len(s)-1, len(text)); k > n; k-- {
			if strings.HasSuffix(text, s[:k]) {
				n = k
				break
			}
		}
	}
	return n
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
