package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	bolt "go.etcd.io/bbolt"
)

// boltBucket is the one bucket a file store keeps its blobs in.
var boltBucket = []byte("blobs")

// DefaultLockTimeout is how long OpenFile waits for another process to
// release a bbolt file before it gives up with an "in use" error.
const DefaultLockTimeout = time.Second

// File is a store in an embedded bbolt file. Only one process can hold the
// file at a time (bbolt takes an exclusive lock); goroutines of that process
// share it freely. Every Put is one transaction, fsynced before it returns.
type File struct {
	name string
	db   *bolt.DB
}

// OpenFile opens (creating if needed) the bbolt file at path. When another
// process holds the file it waits up to lockTimeout (DefaultLockTimeout when
// zero) and then fails with an error saying the store is in use.
func OpenFile(path string, lockTimeout time.Duration) (*File, error) {
	if path == "" {
		return nil, errors.New("store file://: empty path")
	}
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	name := "file://" + path
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store %s is in use by another process (its lock was not released within %v)", name, lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: creating bucket: %w", name, err)
	}
	return &File{name: name, db: db}, nil
}

// openFileURL opens a file:// URL: file://PATH, file:///ABS/PATH or
// file:PATH, with an optional ?lock_timeout=DURATION.
func openFileURL(u *url.URL) (*File, error) {
	path := u.Opaque
	if path == "" {
		path = u.Host + u.Path
	}
	var timeout time.Duration
	q := u.Query()
	for k := range q {
		if k != "lock_timeout" {
			return nil, fmt.Errorf("store file://%s: unknown option %q (want lock_timeout)", path, k)
		}
	}
	if v := q.Get("lock_timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("store file://%s: lock_timeout %q is not a positive duration", path, v)
		}
		timeout = d
	}
	return OpenFile(path, timeout)
}

// Put implements Store: one fsynced bbolt transaction.
func (s *File) Put(ctx context.Context, key string, data []byte) error {
	if key == "" {
		return fmt.Errorf("store %s: empty key", s.name)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	frame := encodeFrame(data)
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBucket).Put([]byte(key), frame)
	})
	if err != nil {
		return fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	return nil
}

// Get implements Store.
func (s *File) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(boltBucket).Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		p, err := decodeFrame(v)
		if err != nil {
			return err
		}
		// bbolt's bytes live only as long as the transaction.
		out = append(make([]byte, 0, len(p)), p...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	return out, nil
}

// Has implements Store.
func (s *File) Has(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		ok = key != "" && tx.Bucket(boltBucket).Get([]byte(key)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	return ok, nil
}

// Delete implements Store.
func (s *File) Delete(ctx context.Context, key string) error {
	if key == "" {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBucket).Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	return nil
}

// Close implements Store; it releases the file's lock.
func (s *File) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store %s: %w", s.name, err)
	}
	return nil
}
