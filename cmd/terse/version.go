package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/terse-llm/terse/kernel"
)

// versionInfo is what `terse version` reports.
type versionInfo struct {
	Module   string `json:"module"`             // the main module's path
	Version  string `json:"version"`            // its version ("(devel)" for a local build)
	Revision string `json:"revision,omitempty"` // the VCS commit it was built from
	Modified bool   `json:"modified,omitempty"` // built with uncommitted changes
	Go       string `json:"go"`                 // the Go toolchain
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Kernel   string `json:"kernel"` // the SIMD level the kernels run at
	Threads  int    `json:"threads"`
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	jsonOut := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	v := versionInfo{Module: "github.com/terse-llm/terse", Version: "(unknown)", Go: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, Kernel: kernel.Kernel(), Threads: kernel.Threads()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path != "" {
			v.Module = bi.Main.Path
		}
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if *jsonOut {
		return writeJSON(stdout, v)
	}
	rev := ""
	if v.Revision != "" {
		rev = " " + v.Revision
		if v.Modified {
			rev += " (modified)"
		}
	}
	fmt.Fprintf(stdout, "terse %s%s\n%s %s/%s, kernel %s, %d threads\n", v.Version, rev, v.Go, v.OS, v.Arch, v.Kernel, v.Threads)
	return nil
}
