package testshared

import (
	"testing"
)

// recorder is a testing.TB that records whether the test was skipped or
// failed instead of stopping the goroutine.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()           {}
func (r *recorder) Skip(args ...any)  { r.skipped = true }
func (r *recorder) Fatal(args ...any) { r.failed = true }

func TestMissingSkipsOrFails(t *testing.T) {
	tests := []struct {
		env          string
		skip, failed bool
	}{
		{"", true, false},
		{"0", true, false},
		{"1", false, true},
	}
	for _, tc := range tests {
		t.Setenv(RequireEnv, tc.env)
		t.Setenv("TERSE_SHARED", t.TempDir())
		r := &recorder{TB: t}
		Path(r, "no/such/file")
		if r.skipped != tc.skip || r.failed != tc.failed {
			t.Errorf("%s=%q: skipped %v failed %v, want %v %v", RequireEnv, tc.env, r.skipped, r.failed, tc.skip, tc.failed)
		}
	}
}
