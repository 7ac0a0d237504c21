//go:build unix

package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestModeUnderUmask: committed files are 0644 masked by the umask, like
// os.Create's 0666 would be masked (changing the umask is safe here: the
// package's tests do not run in parallel).
func TestModeUnderUmask(t *testing.T) {
	for _, tc := range []struct{ umask, want os.FileMode }{
		{0o022, 0o644}, {0o027, 0o640}, {0o077, 0o600}, {0, 0o644},
	} {
		old := syscall.Umask(int(tc.umask))
		path := filepath.Join(t.TempDir(), "out")
		err := WriteFile(path, func(f *File) error { _, err := f.Write([]byte("x")); return err })
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != tc.want {
			t.Errorf("umask %03o: mode %03o, want %03o", tc.umask, got, tc.want)
		}
	}
}
