// Package store keeps KV blocks (and any other immutable blobs) under
// content keys, on one machine or shared between many. Open takes a URL:
//
//	file://PATH             an embedded bbolt file (the default store); one
//	                        process at a time, a second gets an "in use by
//	                        another process" error after ?lock_timeout (1s)
//	redis://HOST:PORT[/DB]  a Redis server shared by any number of processes;
//	                        keys under ?prefix= (default "terse:")
//	s3://BUCKET[/PREFIX]    any S3-compatible object store shared by any number
//	                        of processes; ?endpoint=URL or TERSE_S3_ENDPOINT /
//	                        AWS_ENDPOINT_URL (path-style addressing), region
//	                        and credentials from AWS_REGION, AWS_ACCESS_KEY_ID,
//	                        AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN)
//	mem://                  this process's memory, for tests and single runs
//
// A key names what a blob holds (for a KV block: the hash of the model, the
// cache spec and the token prefix the block extends), so a blob is never
// rewritten with other content: Put of an existing key may keep either
// copy.
//
// Every backend is atomic per blob: a Get returns a whole blob that was
// acknowledged by Put, or ErrNotFound, never a part. The persistent backends
// write one value per blob (a bbolt transaction fsynced on commit, a Redis
// SET, an S3 PUT), and wrap each blob in a small versioned frame (magic,
// length, CRC-32C of the payload) that Get checks, so bytes torn, truncated
// or flipped outside terse come back as an error wrapping ErrCorrupt that
// names the store and the key, never as data. A Put that returned nil
// survives a kill -9 of the writing process; for Redis and S3 it survives a
// crash of the server as far as the server's own durability goes (Redis:
// appendonly yes with appendfsync always).
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
)

// ErrNotFound is returned (wrapped) by Get for a key the store does not hold.
var ErrNotFound = errors.New("store: not found")

// Store is a content-addressed blob store. It is safe for concurrent use.
type Store interface {
	// Put stores data under key; when it returns nil the blob survives a
	// crash of this process (as far as the backend's durability goes).
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the blob stored under key, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Has reports whether key is held.
	Has(ctx context.Context, key string) (bool, error)
	// Delete removes key; deleting a key not held is not an error.
	Delete(ctx context.Context, key string) error
	// Close releases the store's resources.
	Close() error
}

// Open opens the store a URL names: mem://, file://PATH (bbolt),
// redis://HOST:PORT[/DB], s3://BUCKET[/PREFIX].
func Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "mem":
		return NewMem(), nil
	case "file":
		return openFileURL(u)
	case "redis", "rediss":
		return openRedisURL(ctx, u)
	case "s3":
		return openS3URL(ctx, u)
	default:
		return nil, fmt.Errorf("store %q: unknown scheme %q (want mem, file, redis or s3)", rawURL, u.Scheme)
	}
}

// Mem is a store in this process's memory.
type Mem struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMem returns an empty in-memory store.
func NewMem() *Mem { return &Mem{m: map[string][]byte{}} }

// Put implements Store; it keeps a copy of data.
func (s *Mem) Put(_ context.Context, key string, data []byte) error {
	if key == "" {
		return errors.New("store mem: empty key")
	}
	c := append([]byte(nil), data...)
	s.mu.Lock()
	s.m[key] = c
	s.mu.Unlock()
	return nil
}

// Get implements Store; it returns a copy.
func (s *Mem) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.RLock()
	d, ok := s.m[key]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("store mem: key %q: %w", key, ErrNotFound)
	}
	return append([]byte(nil), d...), nil
}

// Has implements Store.
func (s *Mem) Has(_ context.Context, key string) (bool, error) {
	s.mu.RLock()
	_, ok := s.m[key]
	s.mu.RUnlock()
	return ok, nil
}

// Delete implements Store.
func (s *Mem) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
	return nil
}

// Close implements Store.
func (s *Mem) Close() error { return nil }
