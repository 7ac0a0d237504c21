package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/kernel"
)

// setThreads checks --threads and hands it to the kernel pool.
func setThreads(n int) error {
	if n < 0 {
		return usagef("--threads %d: must be 0 (all cores) or a positive count", n)
	}
	kernel.SetThreads(n)
	return nil
}

// checkTrainedCtx refuses a context beyond the one the model was trained
// for (its positions there are extrapolated and its scores meaningless)
// unless allow is set; trained ≤ 0 means the checkpoint does not say.
func checkTrainedCtx(model string, ctx, trained int, allow bool) error {
	if trained <= 0 || ctx <= trained || allow {
		return nil
	}
	return usagef("--ctx %d is beyond the %d tokens model %s was trained on; its predictions there are extrapolated (pass --allow-long-ctx to run it anyway)",
		ctx, trained, model)
}

// readText reads a --data or --calib file, refusing empty and binary files
// and warning on stderr about stray NUL, control or invalid UTF-8 bytes.
func readText(flagName, path string, stderr io.Writer) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagName, err)
	}
	warn, err := eval.CheckText(path, b)
	if err != nil {
		return nil, usagef("--%s %v", flagName, err)
	}
	if warn != "" {
		fmt.Fprintf(stderr, "warning: --%s %s\n", flagName, warn)
	}
	return b, nil
}

// isSet says whether the command line gave flag name.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
