package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	bolt "go.etcd.io/bbolt"
)

// stormEnv, when set in the environment, makes TestStormWriter the writer
// child of TestKill9: it holds the store URL to write to.
const stormEnv = "TERSE_STORE_STORM_URL"

// stormBlob is the content a storm writes under key: 1 KiB to 1 MiB, sized
// and filled from the key alone, so any reader can check it.
func stormBlob(key string) []byte {
	h := fnv.New64a()
	h.Write([]byte(key))
	n := 1024 + int(h.Sum64()%(1<<20-1024+1))
	b := make([]byte, n)
	rand.NewChaCha8(sha256.Sum256([]byte(key))).Read(b)
	return b
}

// TestStormWriter is not a test on its own: run by TestKill9 with stormEnv
// set, it writes a storm of blocks from several goroutines and prints
// "put KEY" before and "ack KEY" after each acknowledged Put, until killed.
func TestStormWriter(t *testing.T) {
	u := os.Getenv(stormEnv)
	if u == "" {
		return
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "storm writer:", err)
		os.Exit(3)
	}
	s, err := Open(context.Background(), u)
	if err != nil {
		fail(err)
	}
	var mu sync.Mutex
	say := func(verb, key string) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprintf(os.Stdout, "%s %s\n", verb, key); err != nil {
			os.Exit(4) // the parent is gone
		}
	}
	const writers, most = 4, 100 // most: a bound in case the parent never kills
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range most {
				key := fmt.Sprintf("storm-%d-%d", g, i)
				say("put", key)
				if err := s.Put(context.Background(), key, stormBlob(key)); err != nil {
					fail(err)
				}
				say("ack", key)
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

// storedKeys lists every key the backend holds, read behind the Store
// interface so that nothing present escapes the check.
func storedKeys(t *testing.T, s Store) []string {
	t.Helper()
	var keys []string
	switch s := s.(type) {
	case *File:
		err := s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(boltBucket).ForEach(func(k, _ []byte) error {
				keys = append(keys, string(k))
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	case *Redis:
		iter := s.rdb.Scan(ctxT(t), 0, s.prefix+"*", 500).Iterator()
		for iter.Next(ctxT(t)) {
			keys = append(keys, strings.TrimPrefix(iter.Val(), s.prefix))
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	case *S3:
		for o := range s.client.ListObjects(ctxT(t), s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			keys = append(keys, strings.TrimPrefix(o.Key, s.prefix))
		}
	default:
		t.Fatalf("cannot list %T", s)
	}
	return keys
}

// TestKill9 is the crash bar: a child process writes a storm of blocks and
// is killed with SIGKILL in the middle of it (for Redis and S3 the server
// is then killed -9 and restarted as well); after that every block the
// child saw acknowledged reads back bit-exactly, and every key the store
// holds is a whole, verified block.
func TestKill9(t *testing.T) {
	acks := 48
	if testing.Short() {
		acks = 16
	}
	cases := []struct {
		name  string
		setup func(t *testing.T) (url string, afterKill func())
		// whileRunning runs once the child holds the store.
		whileRunning func(t *testing.T, url string)
	}{
		{"file", func(t *testing.T) (string, func()) {
			return "file://" + filepath.Join(t.TempDir(), "storm.db"), func() {}
		}, func(t *testing.T, u string) {
			// Another process holds the file: a clear error, not a hang.
			_, err := Open(ctxT(t), u+"?lock_timeout=100ms")
			if err == nil || !strings.Contains(err.Error(), "is in use by another process") {
				t.Errorf("open while the writer holds the file: %v; want an in-use error", err)
			}
		}},
		{"redis", func(t *testing.T) (string, func()) {
			srv := startRedis(t)
			return redisURL(srv, "storm:"), func() { srv.kill9(); srv.start() }
		}, nil},
		{"s3", func(t *testing.T) (string, func()) {
			srv := startS3(t)
			return s3URL(srv, "storm"), func() { srv.kill9(); srv.start() }
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, afterKill := c.setup(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestStormWriter$")
			cmd.Env = append(os.Environ(), stormEnv+"="+u)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// A guard against a hung child, not a timing check.
			guard := time.AfterFunc(3*time.Minute, func() { cmd.Process.Kill() })
			defer guard.Stop()

			put, acked := map[string]bool{}, map[string]bool{}
			killed := false
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				verb, key, ok := strings.Cut(sc.Text(), " ")
				if !ok || !strings.HasPrefix(key, "storm-") {
					continue
				}
				switch verb {
				case "put":
					put[key] = true
				case "ack":
					acked[key] = true
					if len(acked) == 1 && c.whileRunning != nil {
						c.whileRunning(t, u)
					}
				}
				if !killed && len(acked) >= acks {
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					killed = true
				}
			}
			err = cmd.Wait()
			if !killed {
				t.Fatalf("the writer stopped after %d acknowledged blocks (of %d wanted): %v\n%s", len(acked), acks, err, stderr.String())
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the writer was not killed by SIGKILL: %v\n%s", err, stderr.String())
			}
			inFlight := 0
			for k := range put {
				if !acked[k] {
					inFlight++
				}
			}
			afterKill()

			s := openURL(t, u)
			for k := range acked {
				got, err := s.Get(ctxT(t), k)
				if err != nil {
					t.Errorf("acknowledged block %s: %v", k, err)
					continue
				}
				if !bytes.Equal(got, stormBlob(k)) {
					t.Errorf("acknowledged block %s: %d bytes read back differ from the %d written", k, len(got), len(stormBlob(k)))
				}
			}
			present := storedKeys(t, s)
			unacked := 0
			for _, k := range present {
				if !put[k] {
					t.Errorf("the store holds %q, which the writer never began", k)
					continue
				}
				if !acked[k] {
					unacked++
				}
				got, err := s.Get(ctxT(t), k)
				if err != nil {
					t.Errorf("held key %s: %v", k, err)
				} else if !bytes.Equal(got, stormBlob(k)) {
					t.Errorf("held key %s: %d bytes, not the %d-byte block written", k, len(got), len(stormBlob(k)))
				}
			}
			for k := range put {
				if _, err := s.Get(ctxT(t), k); err != nil && !errors.Is(err, ErrNotFound) {
					t.Errorf("key %s: %v", k, err)
				}
			}
			t.Logf("%d blocks acknowledged, %d in flight at the kill; after restart %d held (%d of them written but never acknowledged), all verified",
				len(acked), inFlight, len(present), unacked)
		})
	}
}
