// Package testshared finds the shared test data folder (models, text and
// llama.cpp fixtures) that tests use when it is present.
package testshared

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the shared folder: $TERSE_SHARED, or ../shared beside the
// repository root. It returns "" when neither exists.
func Dir() string {
	if d := os.Getenv("TERSE_SHARED"); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
		return ""
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	d := filepath.Join(root, "..", "shared")
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		return filepath.Clean(d)
	}
	return ""
}

// Path returns the shared file rel (slash-separated), skipping the test with
// a clear message when the shared folder or the file is absent.
func Path(t testing.TB, rel string) string {
	t.Helper()
	d := Dir()
	if d == "" {
		t.Skip("shared test data not found: set TERSE_SHARED or place it at ../shared")
	}
	p := filepath.Join(d, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared test file %s not present: %v", rel, err)
	}
	return p
}
