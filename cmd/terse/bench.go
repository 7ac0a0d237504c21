package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/terse-llm/terse/kv"
	"github.com/terse-llm/terse/model"

	"github.com/terse-llm/terse/bench"
)

func runBench(args []string, stdout, stderr io.Writer) error {
	args, prof, err := profileFlags(args)
	if err != nil {
		return err
	}
	stop, err := prof.start()
	if err != nil {
		return err
	}
	defer stop()
	fs := newFlags("bench", stderr)
	mf := addModelFlags(fs)
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	p := fs.Int("p", 512, "prompt tokens for the prefill test (0: skip)")
	n := fs.Int("n", 128, "tokens for the decode test (0: skip)")
	reps := fs.Int("reps", 5, "repetitions of each test")
	random := fs.String("random", "", "benchmark a random-weight model of this shape instead of --model ("+bench.ShapeNames()+")")
	typ := fs.String("type", "Q4_0", "with --random: a llama.cpp file type (Q4_K_M, Q8_0, F16, ...: its per-tensor mix) or a ggml type (Q4_K, ...)")
	outType := fs.String("output-type", "", "with --random: the output matrix's type (default: the file type's, or Q6_K for ggml types under 6 bits)")
	save := fs.String("save", "", "with --random: write the random-weight model to this GGUF file (for llama.cpp and terse compress) instead of benchmarking it")
	seed := fs.Uint64("seed", 1, "with --random: the weights' seed")
	jsonOut := fs.Bool("json", false, "print one JSON object")
	depth := fs.Int("d", 0, "tokens in the KV cache before each decode test (decode at context d…d+n)")
	kvFlag := fs.String("kv", "f32", "KV cache: f32, f16, q8_0, q4_0, kivi[:kBvB][:gG][:rR], … (see package kv)")
	batchFlag := fs.String("batch", "", "batched decode test: comma-separated sequence counts (e.g. 1,4,8,16), each advanced -n steps together at depth -d")
	roofMiB := fs.Int("roofline-mib", bench.RooflineBytes>>20, "MiB of the read-bandwidth probe's buffer (0: skip the probe)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *p < 0:
		return usagef("-p %d: must be a positive count of prompt tokens (0: skip the prefill test)", *p)
	case *n < 0:
		return usagef("-n %d: must be a positive count of tokens (0: skip the decode test)", *n)
	case *p == 0 && *n == 0:
		return usagef("-p 0 and -n 0 leave nothing to measure")
	case *reps < 1:
		return usagef("--reps %d: must be at least 1", *reps)
	case *threads < 0:
		return usagef("--threads %d: must be 0 (all cores) or a positive count", *threads)
	case *depth < 0:
		return usagef("-d %d: must be 0 (decode from an empty cache) or a positive depth in tokens", *depth)
	case *roofMiB < 0:
		return usagef("--roofline-mib %d: must be 0 (skip) or a size in MiB", *roofMiB)
	}
	var batch []int
	if *batchFlag != "" {
		for _, f := range strings.Split(*batchFlag, ",") {
			b, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || b < 1 {
				return usagef("--batch %q: want comma-separated sequence counts of at least 1, like 1,4,8,16", *batchFlag)
			}
			batch = append(batch, b)
		}
		if *n == 0 {
			return usagef("--batch needs decode steps: -n must be positive")
		}
	}
	roof := *roofMiB << 20
	if roof == 0 {
		roof = -1
	}
	kvSpec, err := kv.Parse(*kvFlag)
	if err != nil {
		return usagef("--kv: %v", err)
	}
	if *save != "" && *random == "" {
		return usagef("--save needs --random SHAPE: it writes a random-weight model")
	}
	var m *model.Model
	var name string
	if *random != "" {
		spec := bench.Random{Shape: *random, Type: *typ, OutType: *outType, Seed: *seed}
		if *save != "" {
			start := time.Now()
			fmt.Fprintf(stderr, "writing %s to %s\n", spec.Name(), *save)
			n, err := bench.SaveRandom(*save, spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s: %s, %.1f MiB of tensors in %.1fs\n", *save, spec.Name(), float64(n)/(1<<20), time.Since(start).Seconds())
			return nil
		}
		var err error
		if m, err = bench.RandomModel(spec); err != nil {
			return err
		}
		name = spec.Name()
	} else {
		ck, err := mf.open()
		if err != nil {
			return err
		}
		defer ck.Close()
		m, name = ck.Model, ck.Path
	}
	r, err := bench.Run(m, name, bench.Options{Prompt: *p, Gen: *n, Reps: *reps, Threads: *threads, Warmup: true,
		Depth: *depth, NewCache: kvSpec.Factory(&m.Config), KVName: kvSpec.String(), Batch: batch, RooflineBytes: roof})
	if err != nil {
		return err
	}
	if *jsonOut {
		return r.WriteJSON(stdout)
	}
	return r.WriteTable(stdout)
}
