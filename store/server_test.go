package store

import (
	"context"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/terse-llm/terse/internal/testshared"
)

// The servers these tests run are real ones: redis-server (the Debian
// package) and gofakes3 (an S3-compatible server, built from
// testdata/s3server with a fix for torn reads; see .ci/run). Each test starts its own on a free loopback port in a
// temporary folder. Where a binary is missing the test skips, or fails when
// TERSE_REQUIRE_SHARED is set (as CI sets it).

// missingServer skips t, or fails it under TERSE_REQUIRE_SHARED.
func missingServer(t testing.TB, msg string) {
	t.Helper()
	if testshared.Required() {
		t.Fatal(msg + " (" + testshared.RequireEnv + " is set)")
	}
	t.Skip(msg)
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// server is a child server process the test owns.
type server struct {
	t     testing.TB
	what  string
	args  func(port int) []string
	bin   string
	dir   string
	port  int
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has exited
	ready func(addr string) error
}

// start runs the server on s.port (choosing one first when zero) and waits
// until it answers. When it cannot come up on a chosen port it tries
// another, a few times.
func (s *server) start() {
	s.t.Helper()
	choose := s.port == 0
	var lastErr error
	for try := 0; try < 5; try++ {
		if choose {
			s.port = freePort(s.t)
		}
		if lastErr = s.launch(); lastErr == nil {
			cmd, done := s.cmd, s.done
			s.t.Cleanup(func() {
				cmd.Process.Kill()
				<-done
			})
			return
		}
		if !choose {
			break
		}
	}
	logText, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	s.t.Fatalf("%s did not start: %v\n%s", s.what, lastErr, logText)
}

// launch starts the process once and waits for it to answer.
func (s *server) launch() error {
	cmd := exec.Command(s.bin, s.args(s.port)...)
	cmd.Dir = s.dir
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	// A startup deadline only, so that a server that never answers fails
	// the test instead of hanging it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("exited: %v", waitErr)
		default:
		}
		err := s.ready(s.addr())
		if err == nil {
			s.cmd, s.done = cmd, done
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill9 kills the server with SIGKILL, as a crash would, and waits for it
// to be gone.
func (s *server) kill9() {
	s.t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		s.t.Fatal(err)
	}
	<-s.done
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// startRedis starts a redis-server that keeps every acknowledged write
// (append-only file, fsync on every write).
func startRedis(t testing.TB) *server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missingServer(t, "redis-server not found (apt-get install -y redis-server)")
	}
	s := &server{t: t, what: "redis-server", bin: bin, dir: t.TempDir(),
		args: func(port int) []string {
			return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "yes", "--appendfsync", "always",
				"--daemonize", "no", "--dir", "."}
		},
		ready: func(addr string) error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte("PING\r\n")); err != nil {
				return err
			}
			b := make([]byte, 7)
			n, err := c.Read(b)
			if err != nil {
				return err
			}
			if string(b[:n]) != "+PONG\r\n" {
				return fmt.Errorf("PING answered %q", b[:n])
			}
			return nil
		}}
	s.start()
	return s
}

// s3ServerBin finds the S3 test server: $TERSE_S3_SERVER, terse-s3server
// on the PATH, in $GOBIN or GOPATH/bin (where .ci/run builds it), or else
// it builds testdata/s3server itself into a folder of the temporary
// directory (once per test binary, with the go command and the module
// proxy). It returns "" and why when none can be had.
func s3ServerBin() (string, string) {
	if p := os.Getenv("TERSE_S3_SERVER"); p != "" {
		return p, ""
	}
	if p, err := exec.LookPath("terse-s3server"); err == nil {
		return p, ""
	}
	for _, d := range []string{os.Getenv("GOBIN"), filepath.Join(build.Default.GOPATH, "bin")} {
		if d == "" {
			continue
		}
		p := filepath.Join(d, "terse-s3server")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, ""
		}
	}
	s3Build.Do(func() {
		// One folder per user, reused: the go command's build cache makes
		// a rebuild cheap, and no run leaves a binary behind.
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("terse-s3server-%d", os.Getuid()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			s3Build.why = err.Error()
			return
		}
		bin := filepath.Join(dir, "terse-s3server")
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = filepath.Join("testdata", "s3server")
		if out, err := cmd.CombinedOutput(); err != nil {
			s3Build.why = fmt.Sprintf("building testdata/s3server: %v\n%s", err, out)
			return
		}
		s3Build.bin = bin
	})
	return s3Build.bin, s3Build.why
}

// s3Build is the one build of testdata/s3server a test binary makes when
// no built server is found.
var s3Build struct {
	sync.Once
	bin, why string
}

// testBucket is the bucket startS3 creates.
const testBucket = "terse-test"

// startS3 starts the S3 test server (gofakes3 over bbolt, every write
// fsynced; see testdata/s3server)
// holding the bucket testBucket, and sets credentials in the environment.
func startS3(t testing.TB) *server {
	t.Helper()
	bin, why := s3ServerBin()
	if bin == "" {
		missingServer(t, "no S3 test server (.ci/run builds store/testdata/s3server, or set TERSE_S3_SERVER): "+why)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "terse-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "terse-test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	s := &server{t: t, what: "s3server", bin: bin, dir: t.TempDir(),
		args: func(port int) []string {
			return []string{"-db", "s3.db", "-host", "127.0.0.1:" + strconv.Itoa(port), "-bucket", testBucket}
		},
		ready: func(addr string) error {
			c := http.Client{Timeout: time.Second}
			r, err := c.Get("http://" + addr + "/" + testBucket)
			if err != nil {
				return err
			}
			r.Body.Close()
			return nil
		}}
	s.start()
	return s
}

// s3URL is the store URL of prefix in the test bucket of s.
func s3URL(s *server, prefix string) string {
	return "s3://" + testBucket + "/" + prefix + "?endpoint=http://" + s.addr()
}

// redisURL is the store URL of a key prefix in database 0 of s.
func redisURL(s *server, prefix string) string {
	return "redis://" + s.addr() + "/0?prefix=" + prefix
}

// openURL opens a store for a test and closes it at the end.
func openURL(t testing.TB, u string) Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
