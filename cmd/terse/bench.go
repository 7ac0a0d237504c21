package main

import (
	"io"

	"github.com/terse-llm/terse/bench"
)

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	mf := addModelFlags(fs)
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	p := fs.Int("p", 512, "prompt tokens for the prefill test (0: skip)")
	n := fs.Int("n", 128, "tokens for the decode test (0: skip)")
	reps := fs.Int("reps", 5, "repetitions of each test")
	jsonOut := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *p < 0 || *n < 0 || *reps < 1 {
		return usagef("-p and -n must be ≥ 0 and --reps ≥ 1")
	}
	ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	r, err := bench.Run(ck.Model, ck.Path, bench.Options{Prompt: *p, Gen: *n, Reps: *reps, Threads: *threads, Warmup: true})
	if err != nil {
		return err
	}
	if *jsonOut {
		return r.WriteJSON(stdout)
	}
	return r.WriteTable(stdout)
}
