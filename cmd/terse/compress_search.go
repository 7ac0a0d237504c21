package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/search"
	"github.com/terse-llm/terse/tensor"
)

// searchFlags are compress's budget flags: with one of them set, compress
// searches a per-tensor allocation (package search) instead of applying a
// preset.
type searchFlags struct {
	targetSize, levels, levelDB, method, state *string
	targetBPW, maxKLD                          *float64
	generations, offspring, fitChunks          *int
	seed                                       *uint64
}

func addSearchFlags(fs *flag.FlagSet) *searchFlags {
	var names []string
	for _, t := range search.DefaultLevels {
		names = append(names, t.String())
	}
	return &searchFlags{
		targetSize:  fs.String("target-size", "", "search a per-tensor allocation whose file is at most this size and within 0.5% of it (bytes, or 3.2GB, 800MiB)"),
		targetBPW:   fs.Float64("target-bpw", 0, "search an allocation of at most this many file bits per weight"),
		maxKLD:      fs.Float64("max-kld", 0, "search the smallest allocation whose KL-divergence on the calibration text is at most this"),
		method:      fs.String("search", "evo", "with a budget: evo (EvoPress, started from dp) or dp (knapsack over per-tensor errors)"),
		levels:      fs.String("levels", strings.Join(names, ","), "with a budget: the types a tensor may take"),
		levelDB:     fs.String("level-db", "", "with a budget: folder of the level database (every tensor at every level, built once and reused; default OUT.levels)"),
		state:       fs.String("search-state", "", "with --search evo: file to save the search's state to after every generation and resume from (default OUT.search.json)"),
		generations: fs.Int("generations", 40, "with --search evo: generations"),
		offspring:   fs.Int("offspring", 16, "with --search evo: children per generation"),
		fitChunks:   fs.Int("fit-chunks", 8, "with a budget: calibration chunks the search's objective holds"),
		seed:        fs.Uint64("seed", 1, "with a budget: random seed of the search"),
	}
}

// active reports whether a budget was given.
func (s *searchFlags) active() bool {
	return *s.targetSize != "" || *s.targetBPW != 0 || *s.maxKLD != 0
}

// run validates the flags and runs the search; calib and the rest come
// from compress's own flags.
func (s *searchFlags) run(mf *modelFlags, out, calib, calibCache string, calibCtx, calibChunks, threads int, set map[string]bool, quiet, jsonOut bool, stdout, stderr io.Writer) error {
	o := search.Options{Out: out, Method: *s.method, LevelDB: *s.levelDB, CalibFile: calib, CalibChunks: calibChunks,
		CalibCache: calibCache, FitChunks: *s.fitChunks, Progress: stderr}
	n := 0
	if *s.targetSize != "" {
		v, err := search.ParseSize(*s.targetSize)
		if err != nil {
			return usagef("--target-size: %v", err)
		}
		o.TargetBytes = v
		n++
	}
	if *s.targetBPW != 0 {
		if *s.targetBPW < 0 || *s.targetBPW > 32 {
			return usagef("--target-bpw %g: want bits per weight between 0 and 32", *s.targetBPW)
		}
		o.TargetBPW = *s.targetBPW
		n++
	}
	if *s.maxKLD != 0 {
		if *s.maxKLD < 0 {
			return usagef("--max-kld %g: want a positive KL-divergence", *s.maxKLD)
		}
		o.MaxKLD = *s.maxKLD
		n++
	}
	if n > 1 {
		return usagef("give one budget: --target-size, --target-bpw or --max-kld")
	}
	if *s.method != "evo" && *s.method != "dp" {
		return usagef("--search %q: want evo or dp", *s.method)
	}
	if calib == "" {
		return usagef("a budget search needs --calib text (for the levels and the objective)")
	}
	for _, f := range []string{"type", "method", "override", "imatrix", "save-imatrix", "sequential", "bits", "group", "vq-dim", "segments", "refine", "kmeans-gptq"} {
		if set[f] {
			return usagef("--%s does not go with a budget: the search chooses every tensor's type among --levels (GPTQ for grid types)", f)
		}
	}
	if *s.generations < 1 || *s.offspring < 1 || *s.fitChunks < 1 {
		return usagef("--generations, --offspring and --fit-chunks want at least 1")
	}
	for _, name := range strings.Split(*s.levels, ",") {
		dt, err := tensor.ParseDType(strings.TrimSpace(name))
		if err != nil || dt.Float() {
			return usagef("--levels: %q is not a quantized ggml type", name)
		}
		o.Levels = append(o.Levels, dt)
	}
	if len(o.Levels) < 2 {
		return usagef("--levels: a search needs at least two types")
	}
	if o.LevelDB == "" {
		o.LevelDB = out + ".levels"
	}
	if set["calib-ctx"] {
		o.CalibCtx = calibCtx
	}
	if *s.method == "evo" {
		o.Evo = search.EvoOptions{Generations: *s.generations, Offspring: *s.offspring, Seed: *s.seed, State: *s.state}
		if o.Evo.State == "" {
			o.Evo.State = out + ".search.json"
		}
	}
	if quiet {
		o.Progress = nil
	}
	kernel.SetThreads(threads)
	ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	res, err := search.Run(context.Background(), ck, o)
	if err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(stdout, res)
	}
	return writeSearchTable(stdout, res)
}

func writeSearchTable(w io.Writer, r *search.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "block / kind\tbits/w\t")
	for _, k := range search.SortedKeys(r.ByBlock) {
		fmt.Fprintf(tw, "%s\t%.3f\t\n", k, r.ByBlock[k])
	}
	for _, k := range search.SortedKeys(r.ByKind) {
		if _, dup := r.ByBlock[k]; !dup {
			fmt.Fprintf(tw, "%s\t%.3f\t\n", k, r.ByKind[k])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nwrote %s (%s search over %s): %d bytes (target %d), %.3f bits/weight, fitness KLD %.5f (dp %.5f), %d evals at %.2f/s; levels %.0f s, search %.0f s, write %.0f s\n",
		r.Out, r.Method, r.Levels, r.FileBytes, r.TargetBytes, r.BPW, r.FitnessKLD, r.DPKLD, r.Evals, r.EvalsPerSec, r.LevelsS, r.SearchS, r.WriteS)
	return err
}
