package mmap

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"small", []byte("hello, world")},
		{"pages", bytes.Repeat([]byte{1, 2, 3, 4, 5}, 10000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Data(), tc.data) {
				t.Errorf("data differs: got %d bytes, want %d", len(m.Data()), len(tc.data))
			}
			if m.Path() != p {
				t.Errorf("Path() = %q", m.Path())
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if m.Data() != nil {
				t.Error("Data() not nil after Close")
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
	if _, err := Open(dir); err == nil {
		t.Error("directory: no error")
	}
}
