// Package testshared finds the shared test data folder (models, text and
// llama.cpp fixtures) that tests use when it is present.
//
// Tests skip when it is absent, so that a fresh clone passes its tests.
// With TERSE_REQUIRE_SHARED=1 in the environment (CI sets it: CI always has
// the folder) an absent folder or file fails the test instead, so that no
// check can hide behind a skip.
package testshared

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RequireEnv is the environment variable that turns "shared data not
// found" skips into failures when set to 1 (or any non-empty value other
// than 0).
const RequireEnv = "TERSE_REQUIRE_SHARED"

// Required says whether RequireEnv is set.
func Required() bool {
	v := os.Getenv(RequireEnv)
	return v != "" && v != "0"
}

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

// Path returns the shared file rel (slash-separated). When the shared folder
// or the file is absent it skips the test with a clear message, or fails it
// when Required.
func Path(t testing.TB, rel string) string {
	t.Helper()
	d := Dir()
	if d == "" {
		missing(t, "shared test data not found: set TERSE_SHARED or place it at ../shared")
	}
	p := filepath.Join(d, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		missing(t, "shared test file "+rel+" not present: "+err.Error())
	}
	return p
}

func missing(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatal(msg + " (" + RequireEnv + " is set)")
		return
	}
	t.Skip(msg)
}
