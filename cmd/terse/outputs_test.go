package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSaveLogitsFile: `eval --save-logits` names a bad target plainly,
// leaves an older file untouched when the evaluation fails, and on success
// leaves the file and no temporary.
func TestSaveLogitsFile(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.bin")
	if err := os.WriteFile(old, []byte("old logits"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  []string
		code  int
		msg   string   // in stderr
		files []string // the folder afterwards
	}{
		{"onto a folder", []string{"--save-logits", dir}, 1, "--save-logits " + dir + ": is a directory", []string{"old.bin"}},
		{"missing folder", []string{"--save-logits", filepath.Join(dir, "no", "x.bin")}, 1, "folder " + filepath.Join(dir, "no") + " does not exist", []string{"old.bin"}},
		{"failed eval keeps old", []string{"--save-logits", old, "--ctx", "1000000"}, -1, "", []string{"old.bin"}},
		{"success", []string{"--save-logits", filepath.Join(dir, "new.bin"), "--windows", "2", "--ctx", "64"}, 0, "", []string{"new.bin", "old.bin"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := runCmd(t, append([]string{"eval", "--quiet"}, tc.args...)...)
			if tc.code >= 0 && code != tc.code || tc.code < 0 && code == 0 {
				t.Errorf("exit %d, want %d: %s", code, tc.code, errs)
			}
			if !strings.Contains(errs, tc.msg) || strings.Contains(errs, ".tmp-") {
				t.Errorf("stderr %q, want it to contain %q and no temporary name", errs, tc.msg)
			}
			if got := entries(t, dir); !slices.Equal(got, tc.files) {
				t.Errorf("folder holds %q, want %q", got, tc.files)
			}
			if b, err := os.ReadFile(old); err != nil || string(b) != "old logits" {
				t.Errorf("the older file changed: %q (%v)", b, err)
			}
		})
	}
}

// entries lists the names in dir, sorted.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
