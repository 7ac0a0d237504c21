package main

import (
	"fmt"
	"io"

	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/internal/atomicfile"
	"github.com/terse-llm/terse/kv"
	"github.com/terse-llm/terse/model"
)

// runKVFit runs the model over calibration text with a recording cache and
// writes the principal components of every head's keys and values: the
// basis file a pca:kF:vF:FILE cache reads.
func runKVFit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("kvfit", stderr)
	mf := addModelFlags(fs)
	text := fs.String("text", "", "calibration text file (required)")
	out := fs.String("out", "", "basis file to write (required)")
	ctx := fs.Int("ctx", eval.DefaultCtx, "window length in tokens (at most the model's trained context)")
	windows := fs.Int("windows", 16, "windows of the text to run (0: all full windows)")
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	weighted := fs.Bool("weighted", false, "fit each head's directions for the error downstream: keys weighted by the second moment of the queries scored against them, values by the output projection (kv.PCAFit.WeightedBasis)")
	cachegen := fs.Bool("cachegen", false, "fit the transform a cachegen:…:tFILE cache codes in (kv.CacheGenFit: keys before RoPE, weighted for the error downstream, the keys' metric carried back through RoPE)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *cachegen && *weighted:
		return usagef("--cachegen fits a weighted basis of its own; give it without --weighted")
	case *text == "":
		return usagef("--text is required: the calibration text the projections are fitted on")
	case *out == "":
		return usagef("--out is required: the basis file to write")
	case *ctx < 2:
		return usagef("--ctx %d: a window needs at least 2 tokens", *ctx)
	case *windows < 0:
		return usagef("--windows %d: must be 0 (all full windows) or a positive count", *windows)
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	raw, err := readText("text", *text, stderr)
	if err != nil {
		return err
	}
	ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	if err := checkTrainedCtx(ck.Path, *ctx, ck.Model.Config.MaxSeqLen, false); err != nil {
		return err
	}
	cfg := &ck.Model.Config
	fit, cgFit := kv.NewPCAFit(cfg), kv.NewCacheGenFit(cfg, *ctx)
	runner := model.NewRunner(ck.Model, 0)
	runner.NewCache = func(n int) (model.KVCache, error) {
		if *cachegen {
			return cgFit.Wrap(model.NewFloatCache(cfg, n)), nil
		}
		return fit.Wrap(model.NewFloatCache(cfg, n)), nil
	}
	opt := eval.Options{Protocol: eval.ProtocolAll, Ctx: *ctx, Windows: *windows, BOS: ck.Tokenizer.BOS(), ModelName: ck.Path, DataName: *text}
	if !*quiet {
		opt.Progress = stderr
	}
	res, err := eval.Evaluate(runner, eval.Stream(ck.Tokenizer, string(raw), ""), opt)
	if err != nil {
		return fmt.Errorf("kvfit: %w", err)
	}
	var b *kv.PCABasis
	switch {
	case *cachegen:
		b, err = cgFit.Basis(ck.Model, ck.Path)
	case *weighted:
		if err = fit.SetOutputMetrics(ck.Model); err == nil {
			b, err = fit.WeightedBasis(ck.Path)
		}
	default:
		b, err = fit.Basis(ck.Path)
	}
	if err != nil {
		return fmt.Errorf("kvfit %s: %w", *text, err)
	}
	f, err := atomicfile.Create(*out)
	if err != nil {
		return fmt.Errorf("--out %w", err)
	}
	defer f.Abort()
	if err := b.Write(f); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	fmt.Fprintf(stdout, "fitted on %d positions per head (%d windows of %d tokens, PPL %.3f); wrote %s\n", b.Positions, res.Windows, *ctx, res.PPL, *out)
	fmt.Fprintf(stdout, "layer  key variance in the leading half  value variance in the leading half\n")
	for l, heads := range b.Layers {
		var kl, ka, vl, va float64
		for _, h := range heads {
			for i := range h.K.Var {
				ka, va = ka+h.K.Var[i], va+h.V.Var[i]
				if i < b.HeadDim/2 {
					kl, vl = kl+h.K.Var[i], vl+h.V.Var[i]
				}
			}
		}
		fmt.Fprintf(stdout, "%5d  %32.4f  %34.4f\n", l, kl/ka, vl/va)
	}
	return nil
}
