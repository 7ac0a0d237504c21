// Package atomicfile writes output files so that a reader never finds a
// partial one under the final name.
//
// Create opens a temporary file in the target's folder; the caller writes
// to it and then calls Commit, which flushes it to disk (fsync), renames it
// over the final name and syncs the folder, so the final name holds either
// its old content or the whole new file, even across a crash. On any error,
// and on Abort, the temporary is removed. The file is created with mode
// 0644, which the operating system masks with the user's umask exactly as
// it does for os.Create; the umask is never read or changed (changing it to
// read it would race with every other goroutine creating files).
//
// The package keeps one piece of process-wide state: the registry of live
// temporaries, so that a command interrupted by SIGINT or SIGTERM can remove
// them before it exits (see HandleSignals). It is guarded by a mutex.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
)

// mode is the permission new files get before the umask.
const mode = 0o644

// registry is the set of live temporaries, the package's only state.
var registry struct {
	mu       sync.Mutex
	live     map[string]struct{}
	shutdown bool // set by Cleanup: no new temporaries, no more renames
}

// File is an output being written: a temporary file beside the target,
// renamed onto it by Commit. It is not safe for concurrent use.
type File struct {
	f      *os.File
	target string
	tmp    string
	done   bool
}

// Create starts writing the file path. Errors name path and what is wrong
// with it (a folder, a missing folder, a folder without write permission),
// never the temporary.
func Create(path string) (*File, error) {
	if path == "" {
		return nil, errors.New("empty file name")
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: folder %s does not exist", path, dir)
	case err != nil:
		return nil, fmt.Errorf("%s: folder %s: %w", path, dir, underlying(err))
	case !st.IsDir():
		return nil, fmt.Errorf("%s: %s is not a folder", path, dir)
	}
	base := filepath.Base(path)
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.shutdown {
		return nil, fmt.Errorf("%s: interrupted", path)
	}
	for try := 0; ; try++ {
		tmp := filepath.Join(dir, "."+base+".tmp-"+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("%s: cannot create files in folder %s: permission denied", path, dir)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, underlying(err))
		}
		if registry.live == nil {
			registry.live = make(map[string]struct{})
		}
		registry.live[tmp] = struct{}{}
		return &File{f: f, target: path, tmp: tmp}, nil
	}
}

// underlying strips the *fs.PathError (which names the temporary) from
// err, keeping the reason.
func underlying(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// Name returns the final name of the file.
func (f *File) Name() string { return f.target }

// Write writes p to the temporary file. Errors name the final file.
func (f *File) Write(p []byte) (int, error) {
	if f.done {
		return 0, fmt.Errorf("%s: write after commit or abort", f.target)
	}
	n, err := f.f.Write(p)
	if err != nil {
		err = fmt.Errorf("%s: %w", f.target, underlying(err))
	}
	return n, err
}

// Commit flushes the file to disk and renames it over the final name, then
// syncs the folder. On error the temporary is removed and the final name
// keeps what it held before. Commit after Commit or Abort is an error.
func (f *File) Commit() (err error) {
	if f.done {
		return fmt.Errorf("%s: commit after commit or abort", f.target)
	}
	defer func() {
		if err != nil {
			f.Abort()
		}
	}()
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("%s: sync: %w", f.target, underlying(err))
	}
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("%s: %w", f.target, underlying(err))
	}
	registry.mu.Lock()
	if registry.shutdown {
		registry.mu.Unlock()
		return fmt.Errorf("%s: interrupted", f.target)
	}
	// The target may have become a folder since Create.
	if st, err := os.Stat(f.target); err == nil && st.IsDir() {
		registry.mu.Unlock()
		return fmt.Errorf("%s: is a directory", f.target)
	}
	err = os.Rename(f.tmp, f.target)
	if err == nil {
		delete(registry.live, f.tmp)
		f.done = true
	}
	registry.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", f.target, underlying(err))
	}
	if err := syncDir(filepath.Dir(f.target)); err != nil {
		return fmt.Errorf("%s: sync folder: %w", f.target, underlying(err))
	}
	return nil
}

// Abort closes and removes the temporary; the final name is untouched.
// Abort after Commit does nothing, so `defer f.Abort()` is the usual
// pattern.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	f.f.Close()
	registry.mu.Lock()
	delete(registry.live, f.tmp)
	registry.mu.Unlock()
	if err := os.Remove(f.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: removing the temporary: %w", f.target, underlying(err))
	}
	return nil
}

// WriteFile writes path through a temporary: write is called with the
// temporary and Commit follows when it returns nil; otherwise the temporary
// is removed and write's error returned.
func WriteFile(path string, write func(f *File) error) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := write(f); err != nil {
		return err
	}
	return f.Commit()
}

// syncDir flushes a folder's entries (the rename) to disk. Windows cannot
// open folders for syncing; there the rename is left to the file system.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Cleanup removes every live temporary and stops new ones from being
// created or committed. It is for a process about to exit; after it,
// Create and Commit fail.
func Cleanup() {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	registry.shutdown = true
	for tmp := range registry.live {
		os.Remove(tmp)
		delete(registry.live, tmp)
	}
}

// liveCount reports how many temporaries are registered (tests).
func liveCount() int {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return len(registry.live)
}
