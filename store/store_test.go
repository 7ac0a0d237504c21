package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	bolt "go.etcd.io/bbolt"
)

// backends lists every backend with a setup that starts what it needs (a
// server, a folder) for the test t and returns a function giving the URL of
// a fresh, empty store each time it is called.
var backends = []struct {
	name  string
	setup func(t testing.TB) func() string
}{
	{"mem", func(t testing.TB) func() string {
		return func() string { return "mem://" }
	}},
	{"file", func(t testing.TB) func() string {
		dir, n := t.TempDir(), 0
		return func() string { n++; return fmt.Sprintf("file://%s", filepath.Join(dir, fmt.Sprintf("s%d.db", n))) }
	}},
	{"redis", func(t testing.TB) func() string {
		srv, n := startRedis(t), 0
		return func() string { n++; return redisURL(srv, fmt.Sprintf("t%d:", n)) }
	}},
	{"s3", func(t testing.TB) func() string {
		srv, n := startS3(t), 0
		return func() string { n++; return s3URL(srv, fmt.Sprintf("t%d", n)) }
	}},
}

// blob returns n bytes of content that depend on seed.
func blob(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), 1})
	r.Read(b)
	return b
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(ctxT(t), key, data); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

func mustGet(t *testing.T, s Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %q: %d bytes differ from the %d put", key, len(got), len(want))
	}
}

func mustHave(t *testing.T, s Store, key string, want bool) {
	t.Helper()
	ok, err := s.Has(ctxT(t), key)
	if err != nil {
		t.Fatalf("has %q: %v", key, err)
	}
	if ok != want {
		t.Fatalf("has %q = %v, want %v", key, ok, want)
	}
}

func mustMiss(t *testing.T, s Store, key string) {
	t.Helper()
	got, err := s.Get(ctxT(t), key)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("get %q: %d bytes, %v; want ErrNotFound", key, len(got), err)
	}
	if !strings.Contains(err.Error(), key) {
		t.Fatalf("get %q: error %q does not name the key", key, err)
	}
	mustHave(t, s, key, false)
}

// conformance is the suite every backend passes.
var conformance = []struct {
	name string
	run  func(t *testing.T, s Store)
}{
	{"put get has delete", func(t *testing.T, s Store) {
		d := blob(1, 3000)
		mustHave(t, s, "k1", false)
		mustPut(t, s, "k1", d)
		mustHave(t, s, "k1", true)
		mustGet(t, s, "k1", d)
		if err := s.Delete(ctxT(t), "k1"); err != nil {
			t.Fatal(err)
		}
		mustMiss(t, s, "k1")
		if err := s.Delete(ctxT(t), "k1"); err != nil {
			t.Fatalf("deleting a missing key: %v", err)
		}
	}},
	{"missing key", func(t *testing.T, s Store) {
		mustMiss(t, s, "never-put")
		mustPut(t, s, "other", []byte("x"))
		mustMiss(t, s, "never-put")
	}},
	{"empty blob", func(t *testing.T, s Store) {
		mustPut(t, s, "empty", nil)
		mustHave(t, s, "empty", true)
		mustGet(t, s, "empty", []byte{})
	}},
	{"large blob 8 MiB", func(t *testing.T, s Store) {
		d := blob(2, 8<<20)
		mustPut(t, s, "large", d)
		mustGet(t, s, "large", d)
	}},
	{"put again", func(t *testing.T, s Store) {
		d := blob(3, 100)
		mustPut(t, s, "k", d)
		mustPut(t, s, "k", d)
		mustGet(t, s, "k", d)
	}},
	{"copies in and out", func(t *testing.T, s Store) {
		d := blob(4, 64)
		keep := append([]byte(nil), d...)
		mustPut(t, s, "k", d)
		d[0] ^= 0xff
		got, err := s.Get(ctxT(t), "k")
		if err != nil {
			t.Fatal(err)
		}
		got[1] ^= 0xff
		mustGet(t, s, "k", keep)
	}},
	{"empty key", func(t *testing.T, s Store) {
		if err := s.Put(ctxT(t), "", []byte("x")); err == nil {
			t.Fatal("put of an empty key succeeded")
		}
	}},
	{"keys with odd characters", func(t *testing.T, s Store) {
		keys := []string{"a/b/c", "with space", "ünïcødé", "colon:semi;", "x%2Fy", strings.Repeat("h", 300)}
		for i, k := range keys {
			mustPut(t, s, k, blob(uint64(10+i), 10+i))
		}
		for i, k := range keys {
			mustGet(t, s, k, blob(uint64(10+i), 10+i))
		}
	}},
	{"concurrent writers", func(t *testing.T, s Store) {
		const writers, each = 8, 6
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					seed := uint64(w*100 + i)
					key := fmt.Sprintf("w%d-%d", w, i)
					if err := s.Put(context.Background(), key, blob(seed, int(seed%7)*40000)); err != nil {
						errs <- err
						return
					}
					// Read back another writer's key meanwhile.
					if _, err := s.Get(context.Background(), fmt.Sprintf("w%d-%d", (w+1)%writers, i)); err != nil && !errors.Is(err, ErrNotFound) {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for w := range writers {
			for i := range each {
				seed := uint64(w*100 + i)
				mustGet(t, s, fmt.Sprintf("w%d-%d", w, i), blob(seed, int(seed%7)*40000))
			}
		}
	}},
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			fresh := b.setup(t)
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) {
					c.run(t, openURL(t, fresh()))
				})
			}
		})
	}
}

// TestReopen: what one open of a persistent store wrote, the next reads.
func TestReopen(t *testing.T) {
	for _, b := range backends[1:] {
		t.Run(b.name, func(t *testing.T) {
			u := b.setup(t)()
			s := openURL(t, u)
			d := blob(5, 70000)
			mustPut(t, s, "kept", d)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openURL(t, u)
			mustGet(t, s, "kept", d)
		})
	}
}

// rawPut writes bytes under key bypassing the frame, as a torn write, a
// flipped bit or another program would leave them.
func rawPut(t *testing.T, s Store, key string, raw []byte) {
	t.Helper()
	var err error
	switch s := s.(type) {
	case *File:
		err = s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(boltBucket).Put([]byte(key), raw) })
	case *Redis:
		err = s.rdb.Set(ctxT(t), s.prefix+key, raw, 0).Err()
	case *S3:
		_, err = s.client.PutObject(ctxT(t), s.bucket, s.prefix+key, bytes.NewReader(raw), int64(len(raw)), minio.PutObjectOptions{})
	default:
		t.Fatalf("no raw access to %T", s)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestCorruptBlob: a value that is not one intact frame is an error naming
// the store and the key, wrapping ErrCorrupt, and no data.
func TestCorruptBlob(t *testing.T) {
	good := encodeFrame(blob(6, 5000))
	flipped := append([]byte(nil), good...)
	flipped[frameHeader+100] ^= 4
	raws := []struct {
		name string
		raw  []byte
	}{
		{"truncated", good[:len(good)/2]},
		{"bit flipped", flipped},
		{"not a frame", []byte("hello")},
		{"empty value", []byte{}},
	}
	// gofakes3 answers a zero-length PUT from minio-go with
	// MissingContentLength, so S3 cannot be given an empty raw value.
	noEmpty := func(backend, raw string) bool { return backend == "s3" && raw == "empty value" }
	for _, b := range backends[1:] {
		t.Run(b.name, func(t *testing.T) {
			u := b.setup(t)()
			s := openURL(t, u)
			for _, r := range raws {
				if noEmpty(b.name, r.name) {
					continue
				}
				t.Run(r.name, func(t *testing.T) {
					key := "bad-" + strings.ReplaceAll(r.name, " ", "-")
					rawPut(t, s, key, r.raw)
					got, err := s.Get(ctxT(t), key)
					if !errors.Is(err, ErrCorrupt) || got != nil {
						t.Fatalf("got %d bytes, %v; want no data and an error wrapping ErrCorrupt", len(got), err)
					}
					name := strings.SplitN(u, "?", 2)[0]
					if msg := err.Error(); !strings.Contains(msg, name) || !strings.Contains(msg, key) {
						t.Fatalf("error %q does not name the store %q and the key %q", msg, name, key)
					}
				})
			}
		})
	}
}

// TestFileInUse: a second open of a held bbolt file fails, promptly and
// clearly, instead of waiting forever; once the first closes it opens.
func TestFileInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctx.db")
	first := openURL(t, "file://"+path)
	_, err := Open(ctxT(t), "file://"+path+"?lock_timeout=100ms")
	if err == nil {
		t.Fatal("second open of a held file succeeded")
	}
	want := "store file://" + path + " is in use by another process"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q, want it to say %q", err, want)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openURL(t, "file://"+path+"?lock_timeout=100ms")
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		url, want string
	}{
		{"ftp://x", `unknown scheme "ftp"`},
		{"file://", "empty path"},
		{"file://" + dir + "/x.db?bogus=1", `unknown option "bogus"`},
		{"file://" + dir + "/x.db?lock_timeout=-1s", "not a positive duration"},
		{"file://" + dir + "/no/such/folder/x.db", "no such file or directory"},
		{"redis://127.0.0.1:1/0?dial_timeout=200ms", "cannot reach the server"},
		{"redis://127.0.0.1:1/0?bogus=1", "unexpected option"},
		{"redis://u:hunter2@127.0.0.1:1/0?dial_timeout=200ms", "store redis://u:xxxxx@127.0.0.1:1/0: cannot reach"},
		{"s3://", "no bucket"},
		{"s3://b?bogus=1", `unknown option "bogus"`},
		{"s3://b?endpoint=ftp://h", "is not an http(s)://HOST[:PORT] URL"},
		{"s3://b?endpoint=http://h&path_style=maybe", `path_style "maybe"`},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			s, err := Open(ctxT(t), c.url)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "store ") {
				t.Fatalf("error %q, want it to name the store and say %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

func TestS3Settings(t *testing.T) {
	cases := []struct {
		name  string
		query string
		env   map[string]string
		want  s3Options
	}{
		{"aws default", "", nil, s3Options{endpoint: "https://s3.amazonaws.com", region: "us-east-1"}},
		{"query endpoint is path-style", "endpoint=http://127.0.0.1:8333", nil,
			s3Options{endpoint: "http://127.0.0.1:8333", region: "us-east-1", pathStyle: true}},
		{"query beats env", "endpoint=http://q:1&region=q", map[string]string{"TERSE_S3_ENDPOINT": "http://e:1", "AWS_REGION": "e"},
			s3Options{endpoint: "http://q:1", region: "q", pathStyle: true}},
		{"terse env beats aws env", "", map[string]string{"TERSE_S3_ENDPOINT": "http://t:1", "AWS_ENDPOINT_URL": "http://a:1", "AWS_DEFAULT_REGION": "d"},
			s3Options{endpoint: "http://t:1", region: "d", pathStyle: true}},
		{"aws env and credentials", "path_style=false", map[string]string{"AWS_ENDPOINT_URL": "https://a:1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "sk", "AWS_SESSION_TOKEN": "tok"},
			s3Options{endpoint: "https://a:1", region: "us-east-1", accessKey: "id", secretKey: "sk", sessionToken: "tok"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := url.ParseQuery(c.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s3Settings("s3://b", q, func(k string) string { return c.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestRedisPrefix: keys live under the prefix, so two prefixes on one
// server are two stores.
func TestRedisPrefix(t *testing.T) {
	srv := startRedis(t)
	a := openURL(t, redisURL(srv, "a:"))
	b := openURL(t, redisURL(srv, "b:"))
	mustPut(t, a, "k", []byte("in a"))
	mustMiss(t, b, "k")
	n, err := b.(*Redis).rdb.Exists(ctxT(t), "a:k").Result()
	if err != nil || n != 1 {
		t.Fatalf("key a:k on the server: %d, %v", n, err)
	}
}

// TestShared: two clients of one Redis or S3 store (as two terse serve
// processes would be) see each other's blocks.
func TestShared(t *testing.T) {
	for _, b := range backends[2:] {
		t.Run(b.name, func(t *testing.T) {
			u := b.setup(t)()
			one, two := openURL(t, u), openURL(t, u)
			d := blob(7, 12345)
			mustPut(t, one, "from-one", d)
			mustGet(t, two, "from-one", d)
			if err := two.Delete(ctxT(t), "from-one"); err != nil {
				t.Fatal(err)
			}
			mustMiss(t, one, "from-one")
		})
	}
}

// TestFileURLForms: the spellings of a file:// URL name the file they say.
func TestFileURLForms(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cases := []struct{ url, file string }{
		{"file://rel.db", "rel.db"},
		{"file:opaque.db", "opaque.db"},
		{"file://./sub/dot.db", "sub/dot.db"},
		{"file://" + filepath.Join(dir, "abs.db"), "abs.db"},
		{"file://held.db?lock_timeout=2s", "held.db"},
	}
	if err := os.Mkdir("sub", 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			s := openURL(t, c.url)
			mustPut(t, s, "k", []byte("v"))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, c.file)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
