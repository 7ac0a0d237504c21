package main

import (
	"fmt"
	"io"

	"github.com/terse-llm/terse/kv"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"

	"github.com/terse-llm/terse/bench"
)

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	mf := addModelFlags(fs)
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	p := fs.Int("p", 512, "prompt tokens for the prefill test (0: skip)")
	n := fs.Int("n", 128, "tokens for the decode test (0: skip)")
	reps := fs.Int("reps", 5, "repetitions of each test")
	random := fs.String("random", "", "benchmark a random-weight model of this shape instead of --model ("+bench.ShapeNames()+")")
	typ := fs.String("type", "Q4_0", "with --random: the weights' type (F32, F16, BF16, Q8_0, Q4_0, Q4_K, ...)")
	outType := fs.String("output-type", "", "with --random: the output matrix's type (default: Q6_K for 4-bit and smaller types, else --type)")
	jsonOut := fs.Bool("json", false, "print one JSON object")
	depth := fs.Int("d", 0, "tokens in the KV cache before each decode test (decode at context d…d+n)")
	kvFlag := fs.String("kv", "f32", "KV cache: f32, f16, q8_0, q4_0, kivi[:kBvB][:gG][:rR], … (see package kv)")
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
	}
	kvSpec, err := kv.Parse(*kvFlag)
	if err != nil {
		return usagef("--kv: %v", err)
	}
	var m *model.Model
	var name string
	if *random != "" {
		dt, err := tensor.ParseDType(*typ)
		if err != nil {
			return usageError{err.Error()}
		}
		ot := dt
		if *outType != "" {
			if ot, err = tensor.ParseDType(*outType); err != nil {
				return usageError{err.Error()}
			}
		} else if dt.Quantized() && dt.BitsPerWeight() < 6 {
			ot = tensor.Q6_K
		}
		if m, err = bench.RandomModel(*random, dt, ot, 1); err != nil {
			return err
		}
		name = fmt.Sprintf("random-%s %s", *random, dt)
	} else {
		ck, err := mf.open()
		if err != nil {
			return err
		}
		defer ck.Close()
		m, name = ck.Model, ck.Path
	}
	r, err := bench.Run(m, name, bench.Options{Prompt: *p, Gen: *n, Reps: *reps, Threads: *threads, Warmup: true,
		Depth: *depth, NewCache: kvSpec.Factory(&m.Config), KVName: kvSpec.String()})
	if err != nil {
		return err
	}
	if *jsonOut {
		return r.WriteJSON(stdout)
	}
	return r.WriteTable(stdout)
}
