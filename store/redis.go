package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix is put before every key a Redis store writes, so that a
// store can share a Redis database with other data.
const DefaultRedisPrefix = "terse:"

// Redis is a store in a Redis server; any number of processes may share one.
// Each blob is one SET (atomic on the server); how much an acknowledged Put
// survives a crash of the server is the server's persistence setting
// (appendonly yes, appendfsync always keeps every acknowledged write).
type Redis struct {
	name   string
	prefix string
	rdb    *redis.Client
}

// openRedisURL opens redis://[USER:PASSWORD@]HOST:PORT[/DB][?prefix=P&...];
// prefix defaults to DefaultRedisPrefix, the other query options are
// go-redis's (dial_timeout, pool_size, ...).
func openRedisURL(ctx context.Context, u *url.URL) (*Redis, error) {
	bare := *u
	bare.RawQuery = ""
	name := bare.Redacted()
	q := u.Query()
	prefix := DefaultRedisPrefix
	if q.Has("prefix") {
		prefix = q.Get("prefix")
		q.Del("prefix")
	}
	c := *u
	c.RawQuery = q.Encode()
	opt, err := redis.ParseURL(c.String())
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("store %s: cannot reach the server: %w", name, err)
	}
	return &Redis{name: name, prefix: prefix, rdb: rdb}, nil
}

// Put implements Store.
func (s *Redis) Put(ctx context.Context, key string, data []byte) error {
	if key == "" {
		return fmt.Errorf("store %s: empty key", s.name)
	}
	if err := s.rdb.Set(ctx, s.prefix+key, encodeFrame(data), 0).Err(); err != nil {
		return fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	return nil
}

// Get implements Store.
func (s *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.rdb.Get(ctx, s.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store %s: key %q: %w", s.name, key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	p, err := decodeFrame(v)
	if err != nil {
		return nil, fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	return p, nil
}

// Has implements Store.
func (s *Redis) Has(ctx context.Context, key string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.prefix+key).Result()
	if err != nil {
		return false, fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	return n > 0, nil
}

// Delete implements Store.
func (s *Redis) Delete(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.prefix+key).Err(); err != nil {
		return fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	return nil
}

// Close implements Store.
func (s *Redis) Close() error {
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("store %s: %w", s.name, err)
	}
	return nil
}
