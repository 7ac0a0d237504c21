// Package mmap maps a whole file read-only into memory. On unix systems it
// uses mmap(2), so pages load lazily and are shared with the page cache;
// elsewhere it falls back to reading the file into memory. Either way the
// caller sees one []byte that must be treated as read-only and must not be
// used after Close.
package mmap

import (
	"fmt"
	"os"
)

// Map is a read-only view of a whole file.
type Map struct {
	path   string
	data   []byte
	mapped bool // data came from mmap and must be unmapped
}

// Open maps the file at path. An empty file gives an empty, valid Map.
func Open(path string) (*Map, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("mmap %s: not a regular file", path)
	}
	size := st.Size()
	if size < 0 || int64(int(size)) != size {
		return nil, fmt.Errorf("mmap %s: size %d does not fit in memory", path, size)
	}
	m := &Map{path: path}
	if size == 0 {
		m.data = []byte{}
		return m, nil
	}
	data, mapped, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	m.data, m.mapped = data, mapped
	return m, nil
}

// Data returns the file's bytes. They are read-only: writing to them faults
// on unix systems. The slice is invalid after Close.
func (m *Map) Data() []byte { return m.data }

// Path returns the path the map was opened from.
func (m *Map) Path() string { return m.path }

// Close releases the mapping. It is safe to call more than once.
func (m *Map) Close() error {
	if m == nil || m.data == nil {
		return nil
	}
	data, mapped := m.data, m.mapped
	m.data, m.mapped = nil, false
	if mapped {
		if err := unmap(data); err != nil {
			return fmt.Errorf("mmap %s: %w", m.path, err)
		}
	}
	return nil
}
