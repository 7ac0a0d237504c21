package main

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/terse-llm/terse/bundled"
	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/internal/atomicfile"
	"github.com/terse-llm/terse/kv"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
)

func runEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", stderr)
	mf := addModelFlags(fs)
	data := fs.String("data", "", "text file to evaluate on (default: the bundled TinyStories sample)")
	ctx := fs.Int("ctx", eval.DefaultCtx, "window length in tokens (at least 2, at most the model's trained context; with --base-logits: the file's)")
	allowLong := fs.Bool("allow-long-ctx", false, "allow a --ctx beyond the model's trained context")
	windows := fs.Int("windows", 0, "evaluate only the first N windows (0: all full windows)")
	protocol := fs.String("protocol", "all", "all: score every token of non-overlapping windows; llamacpp: BOS per window, score the second half; repeat: BOS + a passage of (ctx-1)/2 tokens + the same passage, score the second copy")
	docSep := fs.String("doc-sep", "", "split the file into documents on lines equal to this; each is encoded alone with BOS in front")
	docEOS := fs.Bool("doc-eos", false, "with --doc-sep, also append the vocabulary's EOS after each document (when it has one distinct from BOS)")
	base := fs.String("base", "", "base model to compare with (KL-divergence, top-1, Δp), run live on the same tokens")
	baseTok := fs.String("base-tokenizer", "", "tokenizer for a llama2.c --base")
	baseLogits := fs.String("base-logits", "", "a base-logits file saved by --save-logits, instead of --base")
	saveLogits := fs.String("save-logits", "", "save this model's log-probs (top-K and tail mass) as a base-logits file")
	topK := fs.Int("save-top-k", eval.DefaultTopK, "log-probs kept per position by --save-logits")
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	perPos := fs.Bool("per-position", false, "include every scored position's NLL (and KLD) in --json output")
	kvFlag := fs.String("kv", "f32", "KV cache of --model (--base keeps f32): f32, f16, q8_0, q4_0, q5_0, kivi[:kBvB][:gG][:rR], sink[:S][:wW][+CACHE], h2o[:B][:rP][+CACHE], snapkv[:B][+CACHE], ems[:B][:wW][:tT][:s][:e][+CACHE], zip[:hH][:lL][:fF], stair[:bB1/B2][:wW], gear[:bB][:oO][:rR], pca[:kF][:vF][:bB]:FILE (terse kvfit), … (see package kv)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	jsonOut := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *base != "" && *baseLogits != "" {
		return usagef("give --base or --base-logits, not both")
	}
	if *docEOS && *docSep == "" {
		return usagef("--doc-eos needs --doc-sep (it appends EOS after each document)")
	}
	proto, err := eval.ParseProtocol(*protocol)
	if err != nil {
		return usageError{err.Error()}
	}
	switch {
	case *ctx < 2:
		return usagef("--ctx %d: a window needs at least 2 tokens (default %d)", *ctx, eval.DefaultCtx)
	case *windows < 0:
		return usagef("--windows %d: must be 0 (all full windows) or a positive count", *windows)
	case *saveLogits != "" && *topK < 1:
		return usagef("--save-top-k %d: must be at least 1", *topK)
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	if *baseLogits != "" && !isSet(fs, "ctx") {
		*ctx = 0 // the file's
	}
	kvSpec, err := kv.Parse(*kvFlag)
	if err != nil {
		return usagef("--kv: %v", err)
	}

	var text []byte
	dataName := *data
	if *data == "" {
		text, dataName = bundled.Text(), "the bundled TinyStories sample"
	} else if text, err = readText("data", *data, stderr); err != nil {
		return err
	}
	ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	if err := checkTrainedCtx(ck.Path, *ctx, ck.Model.Config.MaxSeqLen, *allowLong); err != nil {
		return err
	}

	cfg := &ck.Model.Config
	bits, perTok, err := kvSpec.Size(cfg, max(*ctx, 1))
	if err != nil {
		return fmt.Errorf("--kv: %w", err)
	}
	opt := eval.Options{Protocol: proto, Ctx: *ctx, Windows: *windows, BOS: ck.Tokenizer.BOS(), PerPosition: *perPos,
		ModelName: ck.Path, DataName: dataName, ModelBytes: ck.FileBytes,
		KV: &eval.KVInfo{Spec: kvSpec.String(), BitsPerElement: bits, BytesPerToken: perTok}}
	if !*quiet {
		opt.Progress = stderr
	}
	var stream []int
	if *baseLogits == "" || *data != "" {
		eos := -1
		if *docEOS {
			eos = ck.Tokenizer.EOS()
		}
		stream = eval.StreamEOS(ck.Tokenizer, string(text), *docSep, eos)
	}
	if *base != "" {
		bk, err := load.Open(*base, load.Options{Tokenizer: *baseTok})
		if err != nil {
			return fmt.Errorf("--base: %w", err)
		}
		defer bk.Close()
		if bk.Model.Config.VocabSize != ck.Model.Config.VocabSize {
			return fmt.Errorf("base %s has a vocabulary of %d, the model %d: KL-divergence needs the same vocabulary",
				*base, bk.Model.Config.VocabSize, ck.Model.Config.VocabSize)
		}
		opt.Base, opt.BaseName = model.NewRunner(bk.Model, 0), *base
	}
	if *baseLogits != "" {
		f, err := os.Open(*baseLogits)
		if err != nil {
			return fmt.Errorf("--base-logits: %w", err)
		}
		defer f.Close()
		opt.BaseLogits, opt.BaseLogitsName = bufio.NewReaderSize(f, 1<<20), *baseLogits
	}
	var save *atomicfile.File
	if *saveLogits != "" {
		// Streamed into a temporary beside the target, renamed into place
		// only when the evaluation succeeds: never a truncated file that
		// looks whole, and an older file stays until then.
		if save, err = atomicfile.Create(*saveLogits); err != nil {
			return fmt.Errorf("--save-logits %w", err) // "--save-logits x: is a directory"
		}
		defer save.Abort()
		opt.SaveLogits, opt.SaveTopK = save, *topK
	}
	runner := model.NewRunner(ck.Model, 0)
	// A cache of coded bitstreams (kv.CodedSizer) is sized by what it
	// coded, not by its empty form: the last one made reports.
	var last model.KVCache
	newCache := kvSpec.Factory(cfg)
	runner.NewCache = func(n int) (model.KVCache, error) {
		c, err := newCache(n)
		last = c
		return c, err
	}
	res, err := eval.Evaluate(runner, stream, opt)
	if err == nil && save != nil {
		err = save.Commit()
	}
	if err != nil {
		return err
	}
	if *ctx == 0 && res.KVInfo != nil {
		// The window length came from the base-logits file: size the
		// cache for it, not for the placeholder it was sized for above.
		if res.KVInfo.BitsPerElement, res.KVInfo.BytesPerToken, err = kvSpec.Size(cfg, res.Ctx); err != nil {
			return fmt.Errorf("--kv: %w", err)
		}
	}
	// Last, so that neither sizing above overwrites it.
	// All in: the coded rate, plus the bytes held whatever is coded (the
	// open chunk) spread over a full window.
	if cs, ok := last.(kv.CodedSizer); ok && res.KVInfo != nil {
		if b, e := cs.CodedSize(); e > 0 && res.Ctx > 0 {
			perPos := float64(kv.Elements(cfg, 1))
			res.KVInfo.BytesPerToken = float64(b)/float64(e)*perPos + float64(cs.OpenBytes())/float64(res.Ctx)
			res.KVInfo.BitsPerElement = res.KVInfo.BytesPerToken * 8 / perPos
		}
	}
	if ss, ok := last.(kv.SharedSizer); ok && res.KVInfo != nil {
		res.KVInfo.SharedBytes = ss.SharedBytes()
	}
	if *jsonOut {
		return res.WriteJSON(stdout)
	}
	fmt.Fprintf(stdout, "model %s (%s, %d parameters)\n", ck.Path, ck.Format, ck.Model.NumParams())
	return res.WriteTable(stdout)
}
