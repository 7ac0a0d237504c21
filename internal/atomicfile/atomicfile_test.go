package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// entries lists the names in dir.
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

func TestWriteFile(t *testing.T) {
	errWrite := errors.New("write failed")
	cases := []struct {
		name    string
		old     string // existing content ("" none)
		write   string
		fail    bool // the write function returns an error
		want    string
		wantErr error
	}{
		{name: "new", write: "hello", want: "hello"},
		{name: "replace", old: "old content", write: "new", want: "new"},
		{name: "fail keeps old", old: "old content", write: "partial", fail: true, want: "old content", wantErr: errWrite},
		{name: "fail leaves nothing", write: "partial", fail: true, wantErr: errWrite},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.bin")
			if tc.old != "" {
				if err := os.WriteFile(path, []byte(tc.old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := WriteFile(path, func(f *File) error {
				if _, err := f.Write([]byte(tc.write)); err != nil {
					return err
				}
				// Until the commit the final name holds its old content.
				got, rerr := os.ReadFile(path)
				if tc.old == "" && rerr == nil {
					t.Errorf("final name exists before commit")
				}
				if tc.old != "" && string(got) != tc.old {
					t.Errorf("before commit: %q, want the old %q", got, tc.old)
				}
				if tc.fail {
					return errWrite
				}
				return nil
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			got, rerr := os.ReadFile(path)
			if tc.want == "" {
				if rerr == nil {
					t.Errorf("file exists with %q after a failed write", got)
				}
			} else if string(got) != tc.want {
				t.Errorf("content %q, want %q (%v)", got, tc.want, rerr)
			}
			want := 0
			if tc.want != "" {
				want = 1
			}
			if names := entries(t, dir); len(names) != want {
				t.Errorf("folder holds %q, want only the final file", names)
			}
			if n := liveCount(); n != 0 {
				t.Errorf("%d temporaries still registered", n)
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, want string
		skip             bool
	}{
		{name: "directory", path: sub, want: sub + ": is a directory"},
		{name: "no folder", path: filepath.Join(dir, "missing", "x.gguf"), want: "folder " + filepath.Join(dir, "missing") + " does not exist"},
		{name: "folder is a file", path: filepath.Join(file, "x.gguf"), want: "is not a folder"},
		{name: "not writable", path: filepath.Join(ro, "x.gguf"), want: "cannot create files in folder " + ro,
			skip: runtime.GOOS == "windows" || os.Getuid() == 0},
		{name: "empty", path: "", want: "empty file name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip {
				t.Skip("permissions do not apply")
			}
			f, err := Create(tc.path)
			if err == nil {
				f.Abort()
				t.Fatalf("Create(%q) succeeded", tc.path)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), ".tmp-") {
				t.Errorf("error %q names the temporary", err)
			}
		})
	}
}

// TestCommitOntoDirectory: a folder that appears under the final name
// after Create makes Commit fail cleanly.
func TestCommitOntoDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	err = f.Commit()
	if err == nil || !strings.Contains(err.Error(), "is a directory") || strings.Contains(err.Error(), ".tmp-") {
		t.Fatalf("Commit onto a folder: %v", err)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("folder holds %q, want only the folder", names)
	}
}

func TestAbortAndDoubleCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x"))
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := entries(t, dir); len(names) != 0 {
		t.Errorf("after Abort the folder holds %q", names)
	}
	if err := f.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if _, err := f.Write([]byte("y")); err == nil {
		t.Error("Write after Abort succeeded")
	}
}

func TestCleanup(t *testing.T) {
	dir := t.TempDir()
	var fs []*File
	for _, name := range []string{"a", "b", "c"} {
		f, err := Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(name))
		fs = append(fs, f)
	}
	if err := fs[0].Commit(); err != nil {
		t.Fatal(err)
	}
	Cleanup()
	defer func() { // let the other tests of this process create files again
		registry.mu.Lock()
		registry.shutdown = false
		registry.mu.Unlock()
	}()
	if names := entries(t, dir); len(names) != 1 || names[0] != "a" {
		t.Errorf("after Cleanup the folder holds %q, want only the committed a", names)
	}
	if err := fs[1].Commit(); err == nil {
		t.Error("Commit after Cleanup succeeded")
	}
	if _, err := Create(filepath.Join(dir, "d")); err == nil {
		t.Error("Create after Cleanup succeeded")
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("folder holds %q, want only a", names)
	}
}
