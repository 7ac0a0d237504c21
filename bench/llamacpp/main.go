// Command llamacpp runs `terse bench` and llama.cpp's llama-bench side by
// side on the very same GGUF files — random-weight models of one shape
// (bench.Shapes, default "1b": Llama-3.2-1B) written by `terse bench
// --random SHAPE --type T --save` — and prints the ratio table: prefill
// (ppP) and decode (tgN) tokens/s of each, terse / llama.cpp, and terse's
// decode as a fraction of the measured read bandwidth.
//
// Runs alternate between the two programs, type by type, round by round
// (terse first in odd rounds, llama.cpp first in even ones), so drift in
// the machine's load falls on both; the table holds the mean of the rounds.
// Where llama-bench dies of SIGILL (the llama.cpp build in shared/peer uses
// instructions this CPU lacks for some types), the row says "llama.cpp
// cannot run this type here" instead of failing.
//
// From the repository root:
//
//	go run ./bench/llamacpp -types Q8_0,Q4_0,Q4_K_M,Q6_K,IQ4_XS,F16 -t 2
//
// It builds terse into -dir (or takes -terse), writes the missing model
// files there, and finds llama-bench under $TERSE_SHARED or ../shared.
//
// Where the shared build cannot run at all (it is built for AVX-512 with
// VNNI and BF16), build the same llama.cpp commit for the CPU at hand and
// pass it with -llama-bench:
//
//	cmake -B build -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DCMAKE_BUILD_TYPE=Release
//	cmake --build build -j2 --target llama-bench
//	go run ./bench/llamacpp -llama-bench LLAMA_CPP/build/bin/llama-bench
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "llamacpp:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	dir, shape, terse, llama string
	types                    []string
	p, n, threads            int
	reps, rounds             int
}

// sample is one program's result for one type in one round.
type sample struct {
	pp, tg   float64 // tokens/s
	gbps     float64 // terse: weight bytes read per second in decode
	roof     float64 // terse: measured read bandwidth, GB/s
	sigill   bool
	err      error
	duration time.Duration
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("llamacpp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	types := fs.String("types", "Q8_0,Q4_0,Q4_K_M,Q6_K,IQ4_XS,F16", "comma-separated llama.cpp file types")
	fs.StringVar(&o.dir, "dir", filepath.Join(os.TempDir(), "terse-llamacpp"), "folder for the model files and the terse binary")
	fs.StringVar(&o.shape, "shape", "1b", "random-weight model shape (terse bench --random)")
	fs.StringVar(&o.terse, "terse", "", "terse binary (default: build ./cmd/terse into -dir)")
	fs.StringVar(&o.llama, "llama-bench", "", "llama-bench binary (default: $TERSE_SHARED or ../shared, peer/llama.cpp/bin/llama-bench)")
	fs.IntVar(&o.p, "p", 256, "prompt tokens (prefill test)")
	fs.IntVar(&o.n, "n", 64, "generated tokens (decode test)")
	fs.IntVar(&o.threads, "t", 2, "threads, for both programs")
	fs.IntVar(&o.reps, "reps", 3, "repetitions of each test within one run")
	fs.IntVar(&o.rounds, "rounds", 2, "rounds over all types")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case o.p <= 0 || o.n <= 0:
		return fmt.Errorf("-p %d -n %d: both tests need a positive token count", o.p, o.n)
	case o.threads <= 0 || o.reps <= 0 || o.rounds <= 0:
		return fmt.Errorf("-t %d -reps %d -rounds %d: all must be positive", o.threads, o.reps, o.rounds)
	}
	for _, t := range strings.Split(*types, ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.types = append(o.types, strings.ToUpper(t))
		}
	}
	if len(o.types) == 0 {
		return fmt.Errorf("-types %q names no type", *types)
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if o.llama == "" {
		shared := os.Getenv("TERSE_SHARED")
		if shared == "" {
			shared = filepath.Join("..", "shared")
		}
		o.llama = filepath.Join(shared, "peer", "llama.cpp", "bin", "llama-bench")
	}
	if _, err := os.Stat(o.llama); err != nil {
		return fmt.Errorf("llama-bench: %w (set -llama-bench or TERSE_SHARED)", err)
	}
	if o.terse == "" {
		o.terse = filepath.Join(o.dir, "terse")
		fmt.Fprintf(stderr, "building %s\n", o.terse)
		if out, err := exec.Command("go", "build", "-o", o.terse, "./cmd/terse").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/terse (run from the repository root): %v\n%s", err, out)
		}
	}
	files := map[string]string{}
	for _, t := range o.types {
		f := filepath.Join(o.dir, fmt.Sprintf("random-%s-%s.gguf", o.shape, t))
		files[t] = f
		if _, err := os.Stat(f); err == nil {
			continue
		}
		fmt.Fprintf(stderr, "writing %s\n", f)
		cmd := exec.Command(o.terse, "bench", "--random", o.shape, "--type", t, "--save", f)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("terse bench --save %s: %v\n%s", f, err, out)
		}
	}

	load0 := loadAvg()
	start := time.Now()
	terseRes := map[string][]sample{}
	llamaRes := map[string][]sample{}
	for round := 1; round <= o.rounds; round++ {
		for _, t := range o.types {
			steps := []func(){
				func() { terseRes[t] = append(terseRes[t], o.runTerse(files[t], stderr)) },
				func() { llamaRes[t] = append(llamaRes[t], o.runLlama(files[t], stderr)) },
			}
			if round%2 == 0 {
				steps[0], steps[1] = steps[1], steps[0]
			}
			fmt.Fprintf(stderr, "round %d/%d: %s\n", round, o.rounds, t)
			for _, s := range steps {
				s()
			}
		}
	}
	load1 := loadAvg()
	fmt.Fprintf(stdout, "%s random-weight model, %d threads, pp%d / tg%d, %d reps × %d rounds, alternating; %s; load average %s before, %s after (the machine is shared: ratios from one run, not absolute speeds)\n\n",
		o.shape, o.threads, o.p, o.n, o.reps, o.rounds, time.Since(start).Round(time.Second), load0, load1)
	fmt.Fprintf(stdout, "| type | pp%d terse | pp%d llama.cpp | prefill ratio | tg%d terse | tg%d llama.cpp | decode ratio | terse decode GB/s | of roofline |\n", o.p, o.p, o.n, o.n)
	fmt.Fprintf(stdout, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range o.types {
		ts, ls := mean(terseRes[t]), mean(llamaRes[t])
		row := []string{t}
		if ts.err != nil {
			row = append(row, "terse failed: "+oneLine(ts.err), "", "", "", "", "", "", "")
			fmt.Fprintf(stdout, "| %s |\n", strings.Join(row, " | "))
			continue
		}
		pr, tr := "–", "–"
		lpp, ltg := "", ""
		switch {
		case ls.sigill:
			lpp, ltg = "llama.cpp cannot run this type here (SIGILL)", "–"
		case ls.err != nil:
			lpp, ltg = "llama-bench failed: "+oneLine(ls.err), "–"
		default:
			lpp, ltg = fmt.Sprintf("%.2f", ls.pp), fmt.Sprintf("%.2f", ls.tg)
			pr, tr = fmt.Sprintf("%.2f×", ts.pp/ls.pp), fmt.Sprintf("%.2f×", ts.tg/ls.tg)
		}
		frac := "–"
		if ts.roof > 0 {
			frac = fmt.Sprintf("%.0f%% of %.1f GB/s", 100*ts.gbps/ts.roof, ts.roof)
		}
		row = append(row, fmt.Sprintf("%.2f", ts.pp), lpp, pr, fmt.Sprintf("%.2f", ts.tg), ltg, tr, fmt.Sprintf("%.1f", ts.gbps), frac)
		fmt.Fprintf(stdout, "| %s |\n", strings.Join(row, " | "))
	}
	return nil
}

// runTerse runs terse bench on file and reads its JSON.
func (o *options) runTerse(file string, stderr io.Writer) sample {
	args := []string{"bench", "--model", file, "-p", fmt.Sprint(o.p), "-n", fmt.Sprint(o.n),
		"--threads", fmt.Sprint(o.threads), "--reps", fmt.Sprint(o.reps), "--json"}
	out, s := o.exec(o.terse, args, stderr)
	if s.err != nil || s.sigill {
		return s
	}
	var r struct {
		PP   float64 `json:"pp_tps"`
		TG   float64 `json:"tg_tps"`
		GBps float64 `json:"gbps"`
		Roof float64 `json:"roofline_gbps"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		s.err = fmt.Errorf("terse bench --json: %w", err)
		return s
	}
	s.pp, s.tg, s.gbps, s.roof = r.PP, r.TG, r.GBps, r.Roof
	return s
}

// runLlama runs llama-bench on file and reads its JSON.
func (o *options) runLlama(file string, stderr io.Writer) sample {
	args := []string{"-m", file, "-p", fmt.Sprint(o.p), "-n", fmt.Sprint(o.n), "-t", fmt.Sprint(o.threads),
		"-r", fmt.Sprint(o.reps), "-o", "json"}
	out, s := o.exec(o.llama, args, stderr)
	if s.err != nil || s.sigill {
		return s
	}
	var rs []struct {
		NPrompt int     `json:"n_prompt"`
		NGen    int     `json:"n_gen"`
		AvgTS   float64 `json:"avg_ts"`
	}
	if err := json.Unmarshal(out, &rs); err != nil {
		s.err = fmt.Errorf("llama-bench -o json: %w", err)
		return s
	}
	for _, r := range rs {
		switch {
		case r.NPrompt > 0 && r.NGen == 0:
			s.pp = r.AvgTS
		case r.NGen > 0 && r.NPrompt == 0:
			s.tg = r.AvgTS
		}
	}
	if s.pp == 0 || s.tg == 0 {
		s.err = fmt.Errorf("llama-bench reported no pp%d or tg%d result", o.p, o.n)
	}
	return s
}

// exec runs a program, returning its stdout; a death by SIGILL is marked,
// not an error.
func (o *options) exec(prog string, args []string, stderr io.Writer) ([]byte, sample) {
	var out, errb bytes.Buffer
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	s := sample{duration: time.Since(start)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGILL {
			fmt.Fprintf(stderr, "  %s: SIGILL on %s\n", filepath.Base(prog), filepath.Base(args[1]))
			s.sigill = true
			return nil, s
		}
	}
	if err != nil {
		s.err = fmt.Errorf("%s %s: %v: %s", filepath.Base(prog), strings.Join(args, " "), err, lastLine(errb.String()))
		fmt.Fprintf(stderr, "  %v\n", s.err)
		return nil, s
	}
	fmt.Fprintf(stderr, "  %s: %.0fs\n", filepath.Base(prog), s.duration.Seconds())
	return out.Bytes(), s
}

// mean averages the rounds; any SIGILL or error wins.
func mean(ss []sample) sample {
	var m sample
	for _, s := range ss {
		if s.sigill || s.err != nil {
			return s
		}
		m.pp += s.pp / float64(len(ss))
		m.tg += s.tg / float64(len(ss))
		m.gbps += s.gbps / float64(len(ss))
		m.roof = max(m.roof, s.roof)
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
