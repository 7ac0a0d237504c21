//go:build unix

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/terse-llm/terse/bundled"
	"github.com/terse-llm/terse/internal/atomicfile"
)

// TestInterruptLeavesNoPartialFile builds the terse binary, starts
// `compress` and `eval --save-logits` on the bundled model, interrupts them
// in the middle of their work or their write, and checks that each exits
// with the shell's status for the signal, that the output name holds
// nothing (or its old content, untouched), and that no temporary is left.
func TestInterruptLeavesNoPartialFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the terse binary and runs it four times")
	}
	bin := filepath.Join(t.TempDir(), "terse")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	_, _, text, err := bundled.Extract()
	if err != nil {
		t.Fatal(err)
	}
	const old = "the previous output, which must survive"
	cases := []struct {
		name string
		args []string // the output path is appended
		sig  syscall.Signal
		old  bool // a file already holds the output name
		// mid-write: signal once the temporary exists (eval streams into
		// it for seconds); otherwise once the process has used CPU time
		// (compress writes only at the end, after calibrating).
		midWrite bool
	}{
		{name: "compress SIGINT", args: []string{"compress", "--quiet", "--calib", text, "--out"}, sig: syscall.SIGINT},
		{name: "compress SIGTERM over old", args: []string{"compress", "--quiet", "--calib", text, "--out"}, sig: syscall.SIGTERM, old: true},
		{name: "eval SIGINT over old", args: []string{"eval", "--quiet", "--save-logits"}, sig: syscall.SIGINT, old: true, midWrite: true},
		{name: "eval SIGTERM", args: []string{"eval", "--quiet", "--save-logits"}, sig: syscall.SIGTERM, midWrite: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.bin")
			want := []string(nil)
			if tc.old {
				if err := os.WriteFile(out, []byte(old), 0o644); err != nil {
					t.Fatal(err)
				}
				want = []string{"out.bin"}
			}
			cmd := exec.Command(bin, append(slices.Clone(tc.args), out)...)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			ready := func() bool { return cpuTime(cmd.Process.Pid) >= 300*time.Millisecond }
			if tc.midWrite {
				ready = func() bool { return len(entries(t, dir)) > len(want) }
			}
			// Wait (generously: the machine may be loaded) for the moment to
			// signal, failing if the process ends first.
			deadline := time.Now().Add(2 * time.Minute)
			for !ready() {
				select {
				case err := <-exited:
					t.Fatalf("exited (%v) before it could be interrupted: %s", err, stderr.String())
				case <-time.After(2 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("the process never reached the point to interrupt")
				}
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			var werr error
			select {
			case werr = <-exited:
			case <-time.After(2 * time.Minute):
				cmd.Process.Kill()
				t.Fatal("no exit after the signal")
			}
			if code := cmd.ProcessState.ExitCode(); code != atomicfile.ExitCode(tc.sig) {
				t.Errorf("exit status %d (%v), want %d: %s", code, werr, atomicfile.ExitCode(tc.sig), stderr.String())
			}
			if got := entries(t, dir); !slices.Equal(got, want) {
				t.Errorf("folder holds %q, want %q", got, want)
			}
			if tc.old {
				if b, err := os.ReadFile(out); err != nil || string(b) != old {
					t.Errorf("the old output changed: %q (%v)", b, err)
				}
			}
		})
	}
}

// cpuTime is the CPU time process pid has used, from /proc on Linux; on
// other systems, where it is not read, it reports a second after the first
// call so the caller waits a moment instead.
func cpuTime(pid int) time.Duration {
	if runtime.GOOS != "linux" {
		time.Sleep(time.Second)
		return time.Hour
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (in parentheses, may hold spaces):
	// state is field 3, utime and stime fields 14 and 15, in clock ticks
	// (100 a second on Linux).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond
}
