package bundled

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExtract runs Extract with the cache folder usable and not, and with
// a cached file altered at the same size: the files come back whole every
// time, in the expected folder.
func TestExtract(t *testing.T) {
	cases := []struct {
		name    string
		noCache bool // HOME and XDG_CACHE_HOME unusable
		corrupt bool // a cached model file of the right size but wrong bytes
	}{
		{name: "cache folder"},
		{name: "no writable home", noCache: true},
		{name: "corrupt cache", corrupt: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tmp := filepath.Join(root, "tmp")
			cache := filepath.Join(root, "cache")
			for _, d := range []string{tmp, cache} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("TMPDIR", tmp)
			t.Setenv("HOME", root)
			t.Setenv("XDG_CACHE_HOME", cache)
			if tc.noCache {
				// A path below a regular file cannot be created, even by
				// root; "missing" does not exist either.
				blocker := filepath.Join(root, "file")
				if err := os.WriteFile(blocker, nil, 0o444); err != nil {
					t.Fatal(err)
				}
				t.Setenv("HOME", filepath.Join(root, "missing"))
				t.Setenv("XDG_CACHE_HOME", filepath.Join(blocker, "cache"))
			}
			m, _, _, err := Extract()
			if err != nil {
				t.Fatal(err)
			}
			if tc.corrupt {
				bad := bytes.Clone(model)
				bad[len(bad)/2] ^= 0xff
				if err := os.WriteFile(m, bad, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m, tk, tx, err := Extract()
			if err != nil {
				t.Fatal(err)
			}
			want := cache
			if tc.noCache {
				want = tmp
			}
			for _, c := range []struct {
				path string
				data []byte
			}{{m, model}, {tk, tok}, {tx, text}} {
				if !strings.HasPrefix(c.path, want+string(filepath.Separator)) {
					t.Errorf("%s is not under %s", c.path, want)
				}
				got, err := os.ReadFile(c.path)
				if err != nil || !bytes.Equal(got, c.data) {
					t.Errorf("%s: %d bytes, differs from the embedded %d (%v)", c.path, len(got), len(c.data), err)
				}
			}
			es, err := os.ReadDir(filepath.Dir(m))
			if err != nil || len(es) != 3 {
				t.Errorf("cache folder holds %d entries, want the 3 files (%v)", len(es), err)
			}
		})
	}
}
