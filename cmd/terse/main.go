// Command terse compresses language models and the state they run on, and
// measures what each compression costs.
//
// Usage:
//
//	terse <command> [flags]
//
// Commands:
//
//	bench     prefill and decode speed against the memory roofline
//	compress  quantize a model to a GGUF file
//	eval      perplexity and KL-divergence of a model on a text
//	generate  stream text from a prompt
//	inspect   architecture, parameters and per-tensor types of a checkpoint
//	serve     the OpenAI-compatible HTTP API over a model, batched
//	tokenize  token ids of a text
//	version   terse's version, the Go toolchain and the SIMD kernels in use
//
// Run `terse <command> -h` for a command's flags.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/terse-llm/terse/internal/atomicfile"
)

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"bench":    {summary("bench"), runBench},
	"compress": {summary("compress"), runCompress},
	"eval":     {summary("eval"), runEval},
	"generate": {summary("generate"), runGenerate},
	"inspect":  {summary("inspect"), runInspect},
	"report":   {summary("report"), runReport},
	"serve":    {summary("serve"), runServe},
	"kvfit":    {summary("kvfit"), runKVFit},
	"tokenize": {summary("tokenize"), runTokenize},
	"version":  {summary("version"), runVersion},
}

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	// Ctrl-C or kill removes the temporaries of unfinished outputs and
	// exits with 130 or 143: no partial file is left under any name. serve
	// writes no files and shuts down gracefully on those signals itself.
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		atomicfile.HandleSignals()
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "terse: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		// Packages prefix their errors with their name; when that is the
		// subcommand's name too, say it once.
		msg := strings.TrimPrefix(err.Error(), args[0]+": ")
		var ue usageError
		var fe flagError
		switch {
		case errors.As(err, &fe):
			fmt.Fprintf(stderr, "terse %s: %s\n\n", args[0], msg)
			fe.fs.Usage()
			return 2
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "terse %s: %s\nRun 'terse %s -h' for its flags.\n", args[0], msg, args[0])
			return 2
		}
		fmt.Fprintf(stderr, "terse %s: %s\n", args[0], msg)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "terse compresses language models and measures what each compression costs.")
	fmt.Fprintln(w, "\nUsage: terse <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'terse <command> -h' for its flags. With no flags, 'terse eval' evaluates the bundled stories260K model.")
}

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// flagError is a command line the flag parser rejected (exit status 2); the
// command's usage follows the message.
type flagError struct {
	msg string
	fs  *flag.FlagSet
}

func (e flagError) Error() string { return e.msg }

// newFlags makes a flag set whose errors come back instead of exiting; its
// usage (-h) starts with what the command does and an example.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("terse "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "terse %s: %s\n\nExample:\n  %s\n\nUsage: terse %s [flags]\n\nFlags:\n", name, summary(name), example(name), name)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs. The flag package's own messages are held back
// so that each error is printed once, by run.
func parse(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return err
		}
		return flagError{err.Error(), fs}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeCompactJSON prints v on one line (for outputs that are mostly long id lists).
func writeCompactJSON(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
