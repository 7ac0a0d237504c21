package compress

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/terse-llm/terse/internal/mmap"
)

// evict changes no data, on ordinary memory (odd offsets, short, empty)
// and on a memory-mapped file.
func TestEvictKeepsData(t *testing.T) {
	b := make([]byte, 5*os.Getpagesize()+123)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	want := bytes.Clone(b)
	for _, s := range [][]byte{b, b[17:], b[:100], b[:0], b[os.Getpagesize()+1 : 3*os.Getpagesize()-5]} {
		evict(s)
	}
	if !bytes.Equal(b, want) {
		t.Fatal("evict changed memory")
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := mmap.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	evict(m.Data()[3:])
	if !bytes.Equal(m.Data(), want) {
		t.Fatal("evict changed a mapped file's bytes")
	}
}
