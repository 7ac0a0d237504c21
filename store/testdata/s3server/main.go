// Command s3server is the S3-compatible server the store tests run: the
// gofakes3 server over its bbolt backend (every write fsynced, so it
// survives kill -9), with one fix.
//
// gofakes3's bbolt backend hands out an object's contents as a slice of
// bbolt's memory map after its read transaction has ended. A write that
// runs while the response is still being sent may reuse those pages, and
// the reader then receives a torn object (terse's frame checksum catches
// it: "corrupt blob"). Real S3 never does this. Here every read copies the
// object while holding a lock that writes wait for.
//
// It lives in its own module under testdata so that terse's go.mod does
// not carry a test server's dependencies; .ci/run builds it, and the store
// tests build it themselves where it is missing.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
)

// copyingBackend serialises writes against reads of a bbolt backend and
// copies what a read returns before any write can run.
type copyingBackend struct {
	gofakes3.Backend
	mu sync.RWMutex
}

func (b *copyingBackend) GetObject(bucket, name string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	obj, err := b.Backend.GetObject(bucket, name, rng)
	if err != nil || obj == nil || obj.Contents == nil {
		return obj, err
	}
	data, err := io.ReadAll(obj.Contents)
	obj.Contents.Close()
	if err != nil {
		return nil, err
	}
	obj.Contents = readCloser{bytes.NewReader(data)}
	return obj, nil
}

func (b *copyingBackend) HeadObject(bucket, name string) (*gofakes3.Object, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.Backend.HeadObject(bucket, name)
}

func (b *copyingBackend) PutObject(bucket, name string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	// Read the body before taking the lock: a slow client must not hold up
	// every reader.
	data, err := gofakes3.ReadAll(input, size)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.PutObject(bucket, name, meta, bytes.NewReader(data), size, cond)
}

func (b *copyingBackend) DeleteObject(bucket, name string) (gofakes3.ObjectDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.DeleteObject(bucket, name)
}

func (b *copyingBackend) DeleteMulti(bucket string, names ...string) (gofakes3.MultiDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.DeleteMulti(bucket, names...)
}

func (b *copyingBackend) CreateBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.CreateBucket(name)
}

func (b *copyingBackend) DeleteBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.DeleteBucket(name)
}

func (b *copyingBackend) ForceDeleteBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.ForceDeleteBucket(name)
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func main() {
	db := flag.String("db", "s3.db", "bbolt database file")
	host := flag.String("host", "127.0.0.1:9000", "address to listen on")
	bucket := flag.String("bucket", "", "bucket to create at start")
	flag.Parse()
	if err := run(*db, *host, *bucket); err != nil {
		fmt.Fprintln(os.Stderr, "s3server:", err)
		os.Exit(1)
	}
}

func run(db, host, bucket string) error {
	bolt, err := s3bolt.NewFile(db)
	if err != nil {
		return err
	}
	backend := &copyingBackend{Backend: bolt}
	if bucket != "" {
		if err := backend.CreateBucket(bucket); err != nil && !gofakes3.IsAlreadyExists(err) {
			return fmt.Errorf("bucket %q: %w", bucket, err)
		}
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	l, err := net.Listen("tcp", host)
	if err != nil {
		return err
	}
	log.SetOutput(io.Discard)
	return (&http.Server{Handler: faker.Server()}).Serve(l)
}
